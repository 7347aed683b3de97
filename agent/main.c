// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Command-line entry: smtpwatch COMMAND [OPTIONS]. */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "agent.h"
#include "config.h"
#include "control.h"
#include "ifaces.h"
#include "metrics.h"
#include "persist.h"
#include "log.h"
#include "util.h"

static const char usage_main[] =
	"Usage: smtpwatch COMMAND [OPTIONS]\n"
	"Find the process behind every SMTP connection this host opens.\n\n"
	"Commands:\n"
	"  run       attach the kernel programs and write events (JSON lines)\n"
	"  status    print the running agent's state as JSON\n"
	"  hunt      find the sessions behind a blocklist listing (HELO, time) in the journal\n"
	"  check-helo  print the rules each HELO argument trips\n"
	"  top       live ranking of the processes that speak SMTP\n"
	"  cleanup   remove the hooks and state a --pin agent left in the kernel\n"
	"  version   print the version\n\n"
	"Run 'smtpwatch COMMAND --help' for a command's options.\n";

static const char usage_run[] =
	"Usage: smtpwatch run [OPTIONS]\n"
	"Attach to every connect(), the cgroup v2 root and every interface, and write\n"
	"one JSON line per event until SIGINT or SIGTERM; then detach everything.\n"
	"SIGHUP re-reads the configuration. Flags override the file.\n\n"
	"  -c, --config FILE        configuration (default " SW_DEFAULT_CONFIG " if it exists)\n"
	"      --mode MODE          monitor (report would_deny) or enforce (refuse with EPERM)\n"
	"  -o, --output FILE|-      where events go (default: - for stdout)\n"
	"      --syslog TARGET      also send every event to syslog (RFC 5424, @cee JSON):\n"
	"                           udp://HOST:PORT, tcp://HOST:PORT (octet-counted) or unix:///dev/log\n"
	"      --metrics-file PATH  write Prometheus metrics there every 15 s (textfile collector)\n"
	"      --rotate-size BYTES  rotate the output file past this size (K/M/G; default 0: never)\n"
	"      --rotate-keep N      rotated files kept, gzip-compressed: FILE.1.gz ... (default 5)\n"
	"  -S, --socket PATH        control socket (default " SW_DEFAULT_SOCKET ")\n"
	"      --socket-group NAME  let this group use the control socket too (0660)\n"
	"  -p, --ports LIST         watched TCP ports, comma separated (default 25,465,587,2525)\n"
	"      --ring-size BYTES    kernel ring buffer, power of two, K/M/G suffixes (default 2M)\n"
	"      --max-sessions N     sessions tracked at once before the oldest is closed (default 4096)\n"
	"      --idle-timeout SECS  report a session that stays silent this long (default 60)\n"
	"      --alert-threshold N  alert when a session scores N or more (default 70)\n"
	"      --window SECS        sliding window for FANOUT, HELO_VARIES and alerts (default 600)\n"
	"      --fanout N           distinct destinations in the window for FANOUT (default 5)\n"
	"      --rate N             sessions per minute for RATE (default 30)\n"
	"      --mta PATH           an executable that is a mail server (repeatable)\n"
	"      --weight RULE=N      a rule's weight in the score, 0-100 (repeatable)\n"
	"      --tc-mode MODE       auto (tcx where the kernel has it, else clsact), tcx or clsact\n"
	"      --pin                keep hooks, ring and flow state pinned when stopping, so that a\n"
	"                           restart or upgrade loses nothing ('smtpwatch cleanup' removes them)\n"
	"      --pin-dir DIR        where to pin, on the BPF filesystem (default " SW_DEFAULT_PIN_DIR ")\n"
	"  -v, --verbose            more messages; twice for libbpf's debug log\n"
	"  -h, --help               this text\n";

static const char usage_status[] =
	"Usage: smtpwatch status [--socket PATH] [--metrics]\n"
	"--metrics prints Prometheus text format instead of JSON.\n"
	"Print the agent's state as JSON: attach modes, counters, losses.\n"
	"Exit 0 only when the agent is up with all its hooks attached, 69 otherwise.\n";

static int parse_ports(const char *s, struct sw_run_opts *o)
{
	char *dup = strdup(s), *save = NULL, *tok;
	int ret = 0;

	if (!dup)
		return -ENOMEM;
	o->nports = 0;
	for (tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *end;
		long v = strtol(tok, &end, 10);

		if (*end || v < 1 || v > 65535 || o->nports >= SW_MAX_PORTS) {
			ret = -EINVAL;
			break;
		}
		o->ports[o->nports++] = v;
	}
	free(dup);
	return ret ?: (o->nports ? 0 : -EINVAL);
}

/* The command line over the file: 0, or EX_SW_USAGE after saying why; 1 for --help. */
static int apply_flags(int argc, char **argv, struct sw_run_opts *o_)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "mode", required_argument, NULL, 'x' },
		{ "output", required_argument, NULL, 'o' },
		{ "socket", required_argument, NULL, 'S' },
		{ "socket-group", required_argument, NULL, 'G' },
		{ "ports", required_argument, NULL, 'p' },
		{ "syslog", required_argument, NULL, 'L' },
		{ "metrics-file", required_argument, NULL, 'P' },
		{ "rotate-size", required_argument, NULL, 'z' },
		{ "rotate-keep", required_argument, NULL, 'k' },
		{ "ring-size", required_argument, NULL, 'r' },
		{ "max-sessions", required_argument, NULL, 'm' },
		{ "idle-timeout", required_argument, NULL, 't' },
		{ "tc-mode", required_argument, NULL, 'T' },
		{ "pin", no_argument, NULL, 'N' },
		{ "pin-dir", required_argument, NULL, 'D' },
		{ "alert-threshold", required_argument, NULL, 'A' },
		{ "window", required_argument, NULL, 'W' },
		{ "fanout", required_argument, NULL, 'F' },
		{ "rate", required_argument, NULL, 'R' },
		{ "mta", required_argument, NULL, 'M' },
		{ "weight", required_argument, NULL, 'w' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct sw_run_opts o = *o_;
	uint64_t v;
	int c, nmta = o.evidence.bhv.n_mtas;

	optind = 0; /* a full rescan, also on SIGHUP */
	while ((c = getopt_long(argc, argv, "c:o:S:p:vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			break; /* read before the other flags */
		case 'G': {
			struct group *g = getgrnam(optarg);

			if (!g) {
				fprintf(stderr, "smtpwatch: --socket-group: no group named '%s'\n", optarg);
				return EX_SW_USAGE;
			}
			o.socket_group = g->gr_gid;
			break;
		}
		case 'L':
			if (strncmp(optarg, "udp://", 6) && strncmp(optarg, "tcp://", 6) &&
			    strncmp(optarg, "unix://", 7)) {
				fprintf(stderr, "smtpwatch: --syslog is udp://HOST:PORT, tcp://HOST:PORT or unix://PATH\n");
				return EX_SW_USAGE;
			}
			o.syslog_target = optarg;
			break;
		case 'P':
			if (optarg[0] != '/') {
				fprintf(stderr, "smtpwatch: --metrics-file takes an absolute path\n");
				return EX_SW_USAGE;
			}
			o.metrics_file = optarg;
			break;
		case 'z':
			if (sw_parse_size(optarg, &v) || (v && v < 4096)) {
				fprintf(stderr, "smtpwatch: --rotate-size is a size of at least 4K (K/M/G suffixes), or 0 for never\n");
				return EX_SW_USAGE;
			}
			o.rotate_size = v;
			break;
		case 'k':
			if (sw_parse_size(optarg, &v) || v < 1 || v > 1000) {
				fprintf(stderr, "smtpwatch: --rotate-keep is from 1 to 1000 files\n");
				return EX_SW_USAGE;
			}
			o.rotate_keep = v;
			break;
		case 'x':
			if (!strcmp(optarg, "monitor"))
				o.policy.mode = SW_MODE_MONITOR;
			else if (!strcmp(optarg, "enforce"))
				o.policy.mode = SW_MODE_ENFORCE;
			else {
				fprintf(stderr, "smtpwatch: --mode is monitor or enforce\n");
				return EX_SW_USAGE;
			}
			break;
		case 'o':
			o.output = optarg;
			break;
		case 'N':
			o.pin = true;
			break;
		case 'D':
			if (optarg[0] != '/') {
				fprintf(stderr, "smtpwatch: --pin-dir takes an absolute path on the BPF filesystem\n");
				return EX_SW_USAGE;
			}
			o.pin_dir = optarg;
			break;
		case 'S':
			o.socket_path = optarg;
			break;
		case 'p':
			if (parse_ports(optarg, &o)) {
				fprintf(stderr, "smtpwatch: --ports takes 1 to %d port numbers (1-65535), comma separated\n",
					SW_MAX_PORTS);
				return EX_SW_USAGE;
			}
			break;
		case 'r':
			if (sw_parse_size(optarg, &v) || v < 4096 || (v & (v - 1)) || v > (1ULL << 30)) {
				fprintf(stderr, "smtpwatch: --ring-size must be a power of two from 4K to 1G\n");
				return EX_SW_USAGE;
			}
			o.ring_bytes = v;
			break;
		case 'm':
			if (sw_parse_size(optarg, &v) || v < 16 || v > 1000000) {
				fprintf(stderr, "smtpwatch: --max-sessions must be from 16 to 1000000\n");
				return EX_SW_USAGE;
			}
			o.max_sessions = v;
			break;
		case 't':
			if (sw_parse_size(optarg, &v) || v < 1 || v > 86400) {
				fprintf(stderr, "smtpwatch: --idle-timeout must be from 1 to 86400 seconds\n");
				return EX_SW_USAGE;
			}
			o.idle_timeout_s = v;
			break;
		case 'T':
			if (!strcmp(optarg, "auto"))
				o.tc_mode = SW_TC_NONE;
			else if (!strcmp(optarg, "tcx"))
				o.tc_mode = SW_TC_TCX;
			else if (!strcmp(optarg, "clsact"))
				o.tc_mode = SW_TC_CLSACT;
			else {
				fprintf(stderr, "smtpwatch: --tc-mode is auto, tcx or clsact\n");
				return EX_SW_USAGE;
			}
			break;
		case 'A':
			if (sw_parse_size(optarg, &v) || v > 100) {
				fprintf(stderr, "smtpwatch: --alert-threshold is a score from 0 to 100\n");
				return EX_SW_USAGE;
			}
			o.evidence.bhv.alert_threshold = v;
			break;
		case 'W':
			if (sw_parse_size(optarg, &v) || v < 10 || v > 86400) {
				fprintf(stderr, "smtpwatch: --window is from 10 to 86400 seconds\n");
				return EX_SW_USAGE;
			}
			o.evidence.bhv.window_s = v;
			break;
		case 'F':
		case 'R':
			if (sw_parse_size(optarg, &v) || v < 1 || v > 100000) {
				fprintf(stderr, "smtpwatch: --%s is a count from 1 to 100000\n",
					c == 'F' ? "fanout" : "rate");
				return EX_SW_USAGE;
			}
			if (c == 'F')
				o.evidence.bhv.fanout = v;
			else
				o.evidence.bhv.rate_per_min = v;
			break;
		case 'M':
			if (optarg[0] != '/' || nmta >= 32) {
				fprintf(stderr, "smtpwatch: --mta takes an absolute executable path (at most 32)\n");
				return EX_SW_USAGE;
			}
			free(o.mta_store[nmta]);
			o.mta_store[nmta++] = strdup(optarg);
			o.evidence.bhv.mtas = (const char *const *)o.mta_store;
			o.evidence.bhv.n_mtas = nmta;
			break;
		case 'w': {
			char *eq = strchr(optarg, '='), *end;
			long w;

			if (eq) {
				*eq = 0;
				w = strtol(eq + 1, &end, 10);
			}
			if (!eq || *end || w < 0 || w > 100 ||
			    sw_evidence_set_weight(&o.evidence, optarg, w)) {
				fprintf(stderr, "smtpwatch: --weight takes RULE=N with a rule of docs/rules.md and N from 0 to 100\n");
				return EX_SW_USAGE;
			}
			break;
		}
		case 'v':
			sw_verbose++;
			break;
		case 'h':
			fputs(usage_run, stdout);
			return 1;
		default:
			fputs(usage_run, stderr);
			return EX_SW_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "smtpwatch: run takes no arguments (got '%s')\n", argv[optind]);
		return EX_SW_USAGE;
	}
	*o_ = o;
	return 0;
}

static const char *config_arg(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--config") && i + 1 < argc)
			return argv[i + 1];
		if (!strncmp(argv[i], "--config=", 9))
			return argv[i] + 9;
		if (!strcmp(argv[i], "--"))
			break;
	}
	return NULL;
}

/*
 * Defaults, then the file (the default one only if it exists), then the
 * command line. Used at start and again on SIGHUP.
 */
static int build_opts(struct sw_run_opts *o, char *err, size_t errlen)
{
	const char *path = config_arg(o->argc, o->argv);
	struct sw_run_opts n = {
		.socket_path = SW_DEFAULT_SOCKET,
		.socket_group = (gid_t)-1,
		.rotate_keep = 5,
		.ports = { 25, 465, 587, 2525 },
		.nports = 4,
		.ring_bytes = 2 << 20,
		.max_sessions = 4096,
		.idle_timeout_s = 60,
		.argc = o->argc,
		.argv = o->argv,
		.reload = o->reload,
	};
	int r;

	err[0] = 0;
	sw_evidence_cfg_default(&n.evidence);
	sw_config_defaults(&n);
	if (!path && !access(SW_DEFAULT_CONFIG, F_OK))
		path = SW_DEFAULT_CONFIG;
	n.config = path;
	if (path && sw_config_load(path, &n, err, errlen)) {
		sw_opts_free(&n);
		return EX_SW_CONFIG;
	}
	r = apply_flags(o->argc, o->argv, &n);
	if (r) {
		sw_opts_free(&n);
		return r;
	}
	sw_opts_free(o);
	*o = n;
	return 0;
}

static int reload_opts(struct sw_run_opts *o, char *err, size_t errlen)
{
	return build_opts(o, err, errlen);
}

static int cmd_run(int argc, char **argv)
{
	struct sw_run_opts o = { .argc = argc, .argv = argv, .reload = reload_opts };
	char err[512];
	int r = build_opts(&o, err, sizeof(err));

	if (r == 1)
		return 0; /* --help */
	if (r) {
		if (err[0])
			fprintf(stderr, "smtpwatch: %s\n", err);
		return r;
	}
	r = sw_run(&o);
	sw_opts_free(&o);
	return r;
}

static int cmd_status(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 'S' },
		{ "metrics", no_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	const char *path = SW_DEFAULT_SOCKET;
	bool metrics = false;
	cJSON *r;
	char *s;
	int c, ok;

	while ((c = getopt_long(argc, argv, "S:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'S':
			path = optarg;
			break;
		case 'm':
			metrics = true;
			break;
		case 'h':
			fputs(usage_status, stdout);
			return 0;
		default:
			fputs(usage_status, stderr);
			return EX_SW_USAGE;
		}
	}
	r = sw_control_request(path, "status");
	if (!r) {
		int err = errno;

		if (metrics) { /* a scraper still gets smtpwatch_up 0 */
			s = sw_metrics_render(NULL);
			if (s)
				fputs(s, stdout);
			free(s);
		}
		fprintf(stderr, "smtpwatch: no agent answers on %s (%s): start one with 'smtpwatch run'\n",
			path, strerror(err));
		return err == EACCES || err == EPERM ? EX_SW_NOPERM : EX_SW_UNAVAILABLE;
	}
	if (cJSON_IsString(cJSON_GetObjectItem(r, "error"))) {
		fprintf(stderr, "smtpwatch: %s\n", cJSON_GetObjectItem(r, "error")->valuestring);
		cJSON_Delete(r);
		return EX_SW_NOPERM;
	}
	s = metrics ? sw_metrics_render(r) : cJSON_Print(r);
	if (s)
		printf(metrics ? "%s" : "%s\n", s);
	free(s);
	ok = cJSON_IsTrue(cJSON_GetObjectItem(r, "ok"));
	cJSON_Delete(r);
	return ok ? 0 : EX_SW_UNAVAILABLE;
}

static const char usage_cleanup[] =
	"Usage: smtpwatch cleanup [--pin-dir DIR] [--socket PATH]\n"
	"Remove what an agent started with --pin left in the kernel when it stopped: its\n"
	"pinned links (the hooks), ring buffer and flow state, its tc filters, and the\n"
	"sessions file beside its control socket. Refused while an agent runs with them.\n";

static int cmd_cleanup(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "pin-dir", required_argument, NULL, 'D' },
		{ "socket", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	const char *dir = SW_DEFAULT_PIN_DIR, *sock = SW_DEFAULT_SOCKET, *slash;
	char state[4096];
	int c;

	while ((c = getopt_long(argc, argv, "S:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'D':
			dir = optarg;
			break;
		case 'S':
			sock = optarg;
			break;
		case 'h':
			fputs(usage_cleanup, stdout);
			return 0;
		default:
			fputs(usage_cleanup, stderr);
			return EX_SW_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "smtpwatch: cleanup takes no arguments (got '%s')\n", argv[optind]);
		return EX_SW_USAGE;
	}
	if (geteuid()) {
		fprintf(stderr, "smtpwatch: cleanup needs root (it removes BPF links and tc filters)\n");
		return EX_SW_NOPERM;
	}
	slash = strrchr(sock, '/');
	snprintf(state, sizeof(state), "%.*s/sessions.state", slash ? (int)(slash - sock) : 1,
		 slash ? sock : ".");
	return sw_persist_cleanup(dir, state, false);
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : NULL;

	if (!cmd || !strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
		fputs(usage_main, cmd ? stdout : stderr);
		return cmd ? 0 : EX_SW_USAGE;
	}
	if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
		printf("smtpwatch %s\n", SW_VERSION);
		return 0;
	}
	if (!strcmp(cmd, "run"))
		return cmd_run(argc - 1, argv + 1);
	if (!strcmp(cmd, "status"))
		return cmd_status(argc - 1, argv + 1);
	if (!strcmp(cmd, "hunt"))
		return sw_cmd_hunt(argc - 1, argv + 1);
	if (!strcmp(cmd, "check-helo"))
		return sw_cmd_check_helo(argc - 1, argv + 1);
	if (!strcmp(cmd, "top"))
		return sw_cmd_top(argc - 1, argv + 1);
	if (!strcmp(cmd, "cleanup"))
		return cmd_cleanup(argc - 1, argv + 1);
	fprintf(stderr, "smtpwatch: unknown command '%s'\n%s", cmd, usage_main);
	return EX_SW_USAGE;
}
