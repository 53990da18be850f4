"""IMAP intake: connecting (TLS, XOAUTH2), bounded reads, fetching in measured
batches, the notes of unfinished messages, and the intake loop of one mailbox."""
