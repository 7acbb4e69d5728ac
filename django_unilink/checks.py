"""Django system checks for the UNILINK setting (ids unilink.E0xx / unilink.W0xx)."""
