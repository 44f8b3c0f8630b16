"""Helpers for gatehouse's integration tests: free ports, processes stopped
by PID, and real slapd, memcached and dovecot instances in temp dirs."""
