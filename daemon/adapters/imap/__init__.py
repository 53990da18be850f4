"""IMAP intake: connecting (TLS, XOAUTH2), bounded reads, fetching in measured
batches, the notes of unfinished messages, the server's folder names, one
connection's poll (`session`), waiting with IDLE, and the intake loop of one
mailbox."""
