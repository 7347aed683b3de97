/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * SMTP dialogue parser. Runs after the fact over the two reassembled byte
 * streams of one TCP session; every smtp_str points into those buffers, so
 * they must outlive the struct. Raw bytes: pass them through textsafe.h
 * before printing.
 */
#ifndef SMTPWATCH_SMTP_H
#define SMTPWATCH_SMTP_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct smtp_str {
	const uint8_t *p;
	size_t len;
};

struct smtp_reply {
	int code;
	struct smtp_str text; /* first line's text after "NNN " or "NNN-" */
	struct smtp_str full; /* every line of the reply, from text to the last line's end */
};

#define SMTP_MAX_RCPT 16
#define SMTP_MAX_REPLIES 16

struct smtp_dialogue {
	char helo_verb[5];	   /* "EHLO" or "HELO" (uppercased), "" if none */
	struct smtp_str helo;	   /* first HELO/EHLO argument: after the verb and one SP or TAB */
	int helo_count;		   /* HELO/EHLO commands seen, a cut-off last line included */
	struct smtp_str mail_from; /* first MAIL FROM: argument, leading blanks trimmed */
	struct smtp_str rcpt_to[SMTP_MAX_RCPT];
	int n_rcpt;		   /* RCPT TO: arguments kept, at most SMTP_MAX_RCPT */
	bool starttls;		   /* client sent STARTTLS */
	bool tls;		   /* server accepted it (2xx): what follows is TLS, not parsed */
	bool mail_before_helo;	   /* MAIL/RCPT/DATA/BDAT before any HELO/EHLO */
	int banner_code;	   /* 0 if no banner */
	struct smtp_str banner;	   /* banner's first line after "220 " or "220-" */
	/*
	 * Replies after the banner, in order, at most SMTP_MAX_REPLIES. A
	 * multi-line reply is one entry: code of its last line, text of its first.
	 */
	struct smtp_reply replies[SMTP_MAX_REPLIES];
	int n_replies;
	int n_commands;	     /* complete client command lines (message body not counted) */
	bool client_partial; /* client stream ended inside a line or BDAT chunk */
	bool server_partial; /* server stream ended inside a line */
	bool not_smtp;	     /* a stream does not look like SMTP (TLS on 465, binary) */
};

/*
 * Fills d from the client->server and server->client bytes. Safe on any
 * input; allocates nothing. Returns 0, or -EINVAL if d is NULL or a NULL
 * buffer has a non-zero length.
 */
int smtp_parse(const uint8_t *client, size_t clen, const uint8_t *server, size_t slen,
	       struct smtp_dialogue *d);

#endif
