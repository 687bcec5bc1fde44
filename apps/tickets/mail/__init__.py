"""Email in and out of tickets: per-tenant mailboxes (IMAP polling or the SMTP/LMTP receiver),
inbound mail turned into tickets and replies, public replies sent back by email (docs/email.md)."""
