// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * smtpwatch check-helo: run the HELO rules (helo_rules.c) over arguments
 * given by hand, the way a responder checks what a blocklist complained of.
 */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <ifaddrs.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sysexits.h>
#include <unistd.h>

#include "helo_rules.h"
#include "textsafe.h"
#include "util.h"

int sw_cmd_check_helo(int argc, char **argv);

static const char usage_check_helo[] =
	"Usage: smtpwatch check-helo [OPTIONS] HELO...\n"
	"Print, for each HELO/EHLO argument, one JSON line with the rules it trips and\n"
	"its score: {\"helo\":\"...\",\"rules\":[\"HELO_NO_DOT\",...],\"score\":N}.\n"
	"A HELO of - reads more HELOs from standard input, one per line.\n\n"
	"  -H, --hostname NAME   a name of the sending host, repeatable\n"
	"                        (default: gethostname() and its short form)\n"
	"  -a, --address IP      an address of the sending host, repeatable\n"
	"                        (default: this host's non-loopback interface addresses)\n"
	"  -p, --peer IP         the destination's address (for HELO_IS_PEER)\n"
	"  -P, --peer-name NAME  the destination's name (for HELO_IS_PEER)\n"
	"  -h, --help            this text\n\n"
	"The rules and their weights are described in docs/rules.md.\n";

struct check_ctx {
	const char **names;
	char *own_names[2]; /* from gethostname(): freed at the end */
	int n_names;
	uint8_t (*addrs)[16];
	int *fams;
	int n_addrs;
	struct helo_peer peer;
	bool have_peer;
};

static int add_name(struct check_ctx *c, const char *name)
{
	const char **n = realloc(c->names, (c->n_names + 1) * sizeof(*n));

	if (!n)
		return -ENOMEM;
	c->names = n;
	c->names[c->n_names++] = name;
	return 0;
}

static int add_addr(struct check_ctx *c, int family, const void *a)
{
	uint8_t(*na)[16] = realloc(c->addrs, (c->n_addrs + 1) * sizeof(*na));
	int *nf;

	if (!na)
		return -ENOMEM;
	c->addrs = na;
	nf = realloc(c->fams, (c->n_addrs + 1) * sizeof(*nf));
	if (!nf)
		return -ENOMEM;
	c->fams = nf;
	memset(c->addrs[c->n_addrs], 0, 16);
	memcpy(c->addrs[c->n_addrs], a, family == AF_INET ? 4 : 16);
	c->fams[c->n_addrs++] = family;
	return 0;
}

/* "192.0.2.1" or "2001:db8::1" into family and 16 bytes. */
static int parse_ip(const char *s, int *family, uint8_t a[16])
{
	memset(a, 0, 16);
	if (inet_pton(AF_INET, s, a) == 1) {
		*family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, s, a) == 1) {
		*family = AF_INET6;
		return 0;
	}
	return -EINVAL;
}

/* The host's own name, and its first label when it is an FQDN. */
static int default_names(struct check_ctx *c)
{
	char buf[HOST_NAME_MAX + 1];
	char *dot;
	int err;

	if (gethostname(buf, sizeof(buf)))
		return 0; /* nothing known: HELO_NOT_SELF is skipped */
	buf[sizeof(buf) - 1] = '\0';
	if (!buf[0])
		return 0;
	c->own_names[0] = strdup(buf);
	if (!c->own_names[0])
		return -ENOMEM;
	err = add_name(c, c->own_names[0]);
	if (err)
		return err;
	dot = strchr(buf, '.');
	if (!dot || dot == buf)
		return 0;
	*dot = '\0';
	c->own_names[1] = strdup(buf);
	if (!c->own_names[1])
		return -ENOMEM;
	return add_name(c, c->own_names[1]);
}

/*
 * Interface addresses, loopback left out: a remote MX never sees this host
 * as 127.0.0.1, so "[127.0.0.1]" is a mismatch as well as HELO_LOCALHOST.
 */
static int default_addrs(struct check_ctx *c)
{
	struct ifaddrs *ifa, *i;
	int err = 0;

	if (getifaddrs(&ifa))
		return 0; /* nothing known: HELO_LITERAL_MISMATCH is skipped */
	for (i = ifa; i && !err; i = i->ifa_next) {
		if (!i->ifa_addr || (i->ifa_flags & IFF_LOOPBACK))
			continue;
		if (i->ifa_addr->sa_family == AF_INET) {
			const struct sockaddr_in *s = (const void *)i->ifa_addr;

			err = add_addr(c, AF_INET, &s->sin_addr);
		} else if (i->ifa_addr->sa_family == AF_INET6) {
			const struct sockaddr_in6 *s = (const void *)i->ifa_addr;

			err = add_addr(c, AF_INET6, &s->sin6_addr);
		}
	}
	freeifaddrs(ifa);
	return err;
}

/* One JSON line for one HELO. Returns 0 or -errno. */
static int check_one(const struct check_ctx *c, const uint8_t *helo, size_t len)
{
	struct helo_host host = {
		.names = c->names,
		.n_names = c->n_names,
		.addrs = (const uint8_t(*)[16])c->addrs,
		.addr_families = c->fams,
		.n_addrs = c->n_addrs,
	};
	cJSON *o = NULL, *arr;
	char *text = NULL, *line = NULL;
	uint32_t rules;
	int r, err;

	err = helo_classify(helo, len, &host, c->have_peer ? &c->peer : NULL, &rules);
	if (err)
		return err;
	err = -ENOMEM;
	text = sw_text_json(helo, len);
	o = cJSON_CreateObject();
	if (!text || !o || !cJSON_AddItemToObject(o, "helo", cJSON_CreateString(text)))
		goto cleanup;
	arr = cJSON_AddArrayToObject(o, "rules");
	if (!arr)
		goto cleanup;
	for (r = 0; r < HELO_RULE_MAX; r++)
		if ((rules & (1u << r)) &&
		    !cJSON_AddItemToArray(arr, cJSON_CreateString(helo_rule_name(r))))
			goto cleanup;
	if (!cJSON_AddNumberToObject(o, "score", helo_score(rules)))
		goto cleanup;
	line = cJSON_PrintUnformatted(o);
	if (!line)
		goto cleanup;
	err = 0;
	if (puts(line) == EOF || fflush(stdout))
		err = -EIO;
cleanup:
	free(line);
	free(text);
	cJSON_Delete(o);
	return err;
}

/* "-": one HELO per line; "\r\n" or "\n" ends a line, other bytes are kept raw. */
static int check_stdin(const struct check_ctx *c)
{
	char *buf = NULL;
	size_t cap = 0;
	ssize_t n;
	int err = 0;

	while (!err && (n = getline(&buf, &cap, stdin)) >= 0) {
		if (n && buf[n - 1] == '\n')
			n--;
		if (n && buf[n - 1] == '\r')
			n--;
		err = check_one(c, (const uint8_t *)buf, n);
	}
	if (!err && ferror(stdin))
		err = -EIO;
	free(buf);
	return err;
}

int sw_cmd_check_helo(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "hostname", required_argument, NULL, 'H' },
		{ "address", required_argument, NULL, 'a' },
		{ "peer", required_argument, NULL, 'p' },
		{ "peer-name", required_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct check_ctx c = {};
	uint8_t a[16];
	int ch, family, i, err = 0, ret = EX_SW_USAGE;
	bool by_hand_names = false, by_hand_addrs = false;

	while ((ch = getopt_long(argc, argv, "H:a:p:P:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'H':
			by_hand_names = true;
			err = add_name(&c, optarg);
			break;
		case 'a':
			by_hand_addrs = true;
			if (parse_ip(optarg, &family, a)) {
				fprintf(stderr, "smtpwatch: --address takes an IPv4 or IPv6 address, not '%s'\n",
					optarg);
				goto cleanup;
			}
			err = add_addr(&c, family, a);
			break;
		case 'p':
			if (parse_ip(optarg, &c.peer.family, c.peer.addr)) {
				fprintf(stderr, "smtpwatch: --peer takes an IPv4 or IPv6 address, not '%s' (a name goes to --peer-name)\n",
					optarg);
				goto cleanup;
			}
			c.have_peer = true;
			break;
		case 'P':
			c.peer.name = optarg;
			c.have_peer = true;
			break;
		case 'h':
			fputs(usage_check_helo, stdout);
			ret = 0;
			goto cleanup;
		default:
			fputs(usage_check_helo, stderr);
			goto cleanup;
		}
		if (err)
			goto fail;
	}
	if (optind >= argc) {
		fprintf(stderr, "smtpwatch: check-helo needs at least one HELO argument\n%s",
			usage_check_helo);
		goto cleanup;
	}
	if (!by_hand_names && (err = default_names(&c)))
		goto fail;
	if (!by_hand_addrs && (err = default_addrs(&c)))
		goto fail;

	ret = 0;
	for (i = optind; i < argc && !err; i++) {
		if (!strcmp(argv[i], "-"))
			err = check_stdin(&c);
		else
			err = check_one(&c, (const uint8_t *)argv[i], strlen(argv[i]));
	}
	if (!err)
		goto cleanup;
fail:
	if (err == -EIO) {
		fprintf(stderr, "smtpwatch: check-helo: reading standard input or writing standard output failed\n");
		ret = EX_IOERR;
	} else {
		fprintf(stderr, "smtpwatch: check-helo: %s\n", strerror(-err));
		ret = EX_OSERR;
	}
cleanup:
	free(c.own_names[0]);
	free(c.own_names[1]);
	free(c.names);
	free(c.addrs);
	free(c.fams);
	return ret;
}
