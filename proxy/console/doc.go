// Package console serves Tollgate's two consoles, server-rendered HTML
// under /console/: the customers' on the client listener (their balance,
// keys, calls, statements, prices and disputes) and the operators' on the
// admin listener (accounts, money, disputes, the catalogue and health).
//
// Pages are html/template (contextual escaping: whatever a user typed is
// shown escaped), their CSS and one small script embedded in the binary;
// every core flow works without JavaScript (confirmations are pages, not
// dialogs). A Content-Security-Policy allows nothing but the console's
// own files.
//
// People sign in with an email and a password they set from an
// invitation. Users, invitations and sessions are kept in the WAL's state
// area (wal.SetState), like the operators of proxy/access, or in cluster
// mode in PostgreSQL (proxy/access/pgusers): durable once a call returns, outside the money records, never in clear (passwords as
// argon2id, invitation and session tokens as SHA-256). A session is a
// random token in an HttpOnly, SameSite=Strict cookie (Secure over TLS);
// each form carries a CSRF token derived from it by HMAC, so nothing more
// is stored. Sign-in failures are throttled per address and per user.
//
// Rejected alternatives: a single-page app with its own build (the issue
// asks for none, and pages that work without scripts test and audit more
// simply); bcrypt (argon2id is the current recommendation, RFC 9106 and
// OWASP); signed stateless session cookies (they cannot be signed out
// everywhere without a store anyway).
package console
