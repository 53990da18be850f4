"""`spocd bench`: synthetic loads through the real code (ingest, pipe, SMTP,
IMAP against a private Dovecot, the SLA sweep), measured."""
