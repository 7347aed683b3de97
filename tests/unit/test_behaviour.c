// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Per-process behaviour rules over sliding windows, and alert once per window. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "behaviour.h"
#include "check.h"

#define SEC 1000000000ULL

static struct bhv_session sess(uint32_t pid, uint64_t t, uint8_t last_octet, uint16_t port,
			       const char *helo, const char *exe)
{
	static uint8_t addrs[256][16];
	struct bhv_session s = {
		.pid = pid, .start_ns = 1000 + pid, .now_ns = t, .name = "bot", .exe = exe,
		.family = AF_INET, .dport = port, .helo = helo,
	};

	addrs[last_octet][0] = 198;
	addrs[last_octet][1] = 51;
	addrs[last_octet][2] = 100;
	addrs[last_octet][3] = last_octet;
	s.daddr = addrs[last_octet];
	return s;
}

static void test_fanout(void)
{
	struct bhv_cfg c;
	struct bhv_table t;
	struct bhv_proc *p;
	uint32_t r = 0;

	bhv_cfg_default(&c);
	CHECK(!bhv_init(&t, &c));
	for (int i = 1; i <= 4; i++) {
		struct bhv_session s = sess(10, i * SEC, i, 25, "a.example.com", "/tmp/bot");

		r = bhv_observe(&t, &s, &p);
		CHECK(!(r & (1u << BHV_FANOUT)));
	}
	struct bhv_session s5 = sess(10, 5 * SEC, 5, 25, "a.example.com", "/tmp/bot");
	r = bhv_observe(&t, &s5, &p);
	CHECK(r & (1u << BHV_FANOUT));
	CHECK(p && p->sessions_total == 5);
	/* The same destination again is not a new one. */
	CHECK(bhv_dests_in_window(&t, p, 5 * SEC) == 5);
	/* Outside the window, the destinations age out. */
	struct bhv_session late = sess(10, 5 * SEC + 601 * SEC, 1, 25, "a.example.com", "/tmp/bot");
	r = bhv_observe(&t, &late, &p);
	CHECK(!(r & (1u << BHV_FANOUT)));
	bhv_free(&t);
}

static void test_rate_and_helo_varies(void)
{
	struct bhv_cfg c;
	struct bhv_table t;
	struct bhv_proc *p;
	uint32_t r = 0;

	bhv_cfg_default(&c);
	c.rate_per_min = 10;
	CHECK(!bhv_init(&t, &c));
	for (int i = 0; i < 9; i++) {
		struct bhv_session s = sess(20, SEC + i * 100000000ULL, 1, 587, "same.example.com", "/x");

		r = bhv_observe(&t, &s, &p);
		CHECK(!(r & (1u << BHV_RATE)));
		CHECK(!(r & (1u << BHV_HELO_VARIES)));
	}
	struct bhv_session s10 = sess(20, 2 * SEC, 1, 587, "other.example.com", "/x");
	r = bhv_observe(&t, &s10, &p);
	CHECK(r & (1u << BHV_RATE));
	CHECK(r & (1u << BHV_HELO_VARIES));
	CHECK_STR(p->last_helo, "other.example.com");
	/* A minute later the rate has cooled down. */
	struct bhv_session s11 = sess(20, 70 * SEC, 1, 587, "other.example.com", "/x");
	r = bhv_observe(&t, &s11, &p);
	CHECK(!(r & (1u << BHV_RATE)));
	bhv_free(&t);
}

static void test_non_mta_direct(void)
{
	struct bhv_cfg c;
	struct bhv_table t;
	struct bhv_proc *p;
	const char *mine[] = { "/opt/relay/bin/relayd" };
	struct bhv_session s;

	bhv_cfg_default(&c);
	c.mtas = mine;
	c.n_mtas = 1;
	CHECK(!bhv_init(&t, &c));
	s = sess(30, SEC, 7, 25, "h.example.com", "/usr/bin/python3.11");
	CHECK(bhv_observe(&t, &s, &p) & (1u << BHV_NON_MTA_DIRECT));
	s = sess(31, SEC, 7, 25, "h.example.com", "/usr/lib/postfix/sbin/smtp");
	CHECK(!(bhv_observe(&t, &s, &p) & (1u << BHV_NON_MTA_DIRECT)));
	s = sess(32, SEC, 7, 25, "h.example.com", "/opt/relay/bin/relayd");
	CHECK(!(bhv_observe(&t, &s, &p) & (1u << BHV_NON_MTA_DIRECT)));
	s = sess(33, SEC, 7, 587, "h.example.com", "/usr/bin/python3.11");
	CHECK(!(bhv_observe(&t, &s, &p) & (1u << BHV_NON_MTA_DIRECT))); /* submission */
	s = sess(34, SEC, 7, 25, "h.example.com", "/usr/bin/python3.11");
	s.daddr = (const uint8_t[16]){ 127, 0, 0, 9 };
	CHECK(!(bhv_observe(&t, &s, &p) & (1u << BHV_NON_MTA_DIRECT))); /* loopback */
	bhv_free(&t);
}

static void test_session_rules_and_wire(void)
{
	struct bhv_cfg c;
	struct bhv_table t;
	struct bhv_proc *p;
	const char *lists[] = { "spamhaus-zen" };
	struct bhv_session s;
	uint32_t r;

	bhv_cfg_default(&c);
	CHECK(!bhv_init(&t, &c));
	s = sess(40, SEC, 1, 2525, "x.example.com", "/x");
	s.pregreet = true;
	s.n_rejected = 2;
	s.lists = lists;
	s.n_lists = 1;
	r = bhv_observe(&t, &s, &p);
	CHECK(r == ((1u << BHV_PREGREET) | (1u << BHV_REJECTED) | (1u << BHV_LISTED)));
	CHECK(p && p->n_lists == 1 && p->rejected_total == 2);
	CHECK_STR(p->lists[0], "spamhaus-zen");
	s = sess(0, SEC, 1, 25, NULL, NULL);
	s.wire = true;
	r = bhv_observe(&t, &s, &p);
	CHECK(r & (1u << BHV_UNATTRIBUTED));
	CHECK(p == NULL);
	CHECK(t.count == 1);
	bhv_free(&t);
}

static void test_alert_once_per_window(void)
{
	struct bhv_cfg c;
	struct bhv_table t;
	struct bhv_proc *p;
	struct bhv_session s;

	bhv_cfg_default(&c);
	CHECK(!bhv_init(&t, &c));
	s = sess(50, SEC, 1, 25, "x", "/x");
	bhv_observe(&t, &s, &p);
	CHECK(!bhv_should_alert(&t, p, c.alert_threshold - 1, SEC));
	CHECK(bhv_should_alert(&t, p, c.alert_threshold, 2 * SEC));
	CHECK(!bhv_should_alert(&t, p, 100, 3 * SEC));
	CHECK(!bhv_should_alert(&t, p, 100, 2 * SEC + 599 * SEC));
	CHECK(bhv_should_alert(&t, p, 100, 2 * SEC + 600 * SEC));
	CHECK(p->max_score == 100);
	bhv_free(&t);
}

static void test_bounded_table(void)
{
	struct bhv_cfg c;
	struct bhv_table t;
	struct bhv_proc *p;

	bhv_cfg_default(&c);
	c.max_procs = 16;
	CHECK(!bhv_init(&t, &c));
	for (uint32_t pid = 1; pid <= 100; pid++) {
		struct bhv_session s = sess(pid, pid * SEC, 1, 25, "x", "/x");

		bhv_observe(&t, &s, &p);
	}
	CHECK(t.count == 16);
	CHECK(t.evicted == 84);
	/* The most recent survive. */
	CHECK(t.lru_head && t.lru_head->pid == 100);
	bhv_free(&t);
}

/* A saved table comes back whole, in LRU order, and goes on counting and alerting. */
static void test_save_and_load(void)
{
	struct bhv_cfg c;
	struct bhv_table t, u;
	struct bhv_proc *p;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	bhv_cfg_default(&c);
	CHECK(!bhv_init(&t, &c));
	for (int i = 1; i <= 6; i++) {
		struct bhv_session s = sess(70, i * SEC, i, 25, i % 2 ? "a.example" : "b.example", "/x");

		bhv_observe(&t, &s, &p);
	}
	CHECK(bhv_should_alert(&t, p, 100, 7 * SEC));
	{
		struct bhv_session s = sess(71, 8 * SEC, 1, 25, "c.example", "/y");

		bhv_observe(&t, &s, &p); /* 71 is now the most recent */
	}
	f = open_memstream(&buf, &len);
	CHECK(f && !bhv_save(&t, f));
	fclose(f);

	CHECK(!bhv_init(&u, &c));
	f = fmemopen(buf, len, "r");
	CHECK(f && bhv_load(&u, f) == 2);
	fclose(f);
	CHECK(u.count == 2 && u.lru_head && u.lru_head->pid == 71 && u.lru_tail->pid == 70);
	{
		struct bhv_session s = sess(70, 9 * SEC, 7, 25, "a.example", "/x");
		uint32_t r = bhv_observe(&u, &s, &p);

		CHECK(p == u.lru_head && p->sessions_total == 7);
		CHECK(bhv_dests_in_window(&u, p, 9 * SEC) == 7);
		CHECK(r & (1u << BHV_FANOUT));
		CHECK(r & (1u << BHV_HELO_VARIES));
		CHECK(!bhv_should_alert(&u, p, 100, 9 * SEC)); /* alerted before the restart */
	}
	bhv_free(&u);

	/* Another build's records are not read; a cut file is refused; no file part at
	 * all (a state file from before) is nothing to take. */
	CHECK(!bhv_init(&u, &c));
	((uint32_t *)buf)[1] ^= 1;
	f = fmemopen(buf, len, "r");
	CHECK(bhv_load(&u, f) == -EPROTO);
	fclose(f);
	((uint32_t *)buf)[1] ^= 1;
	f = fmemopen(buf, len - 1, "r");
	CHECK(bhv_load(&u, f) == -EINVAL);
	CHECK(u.count == 0); /* all or nothing */
	fclose(f);
	f = fmemopen(buf, 1, "r");
	CHECK(fgetc(f) != EOF && bhv_load(&u, f) == 0);
	fclose(f);
	bhv_free(&u);

	/* Hostile counts and unterminated text are brought within their arrays. */
	{
		struct bhv_proc *rec = (struct bhv_proc *)(buf + 16);

		memset(rec->exe, 'A', sizeof(rec->exe));
		rec->n_dests = 1 << 30;
		rec->n_helos = -5;
		rec->rejects_head = 99;
		rec->sess_head = 1u << 31;
		CHECK(!bhv_init(&u, &c));
		f = fmemopen(buf, len, "r");
		CHECK(bhv_load(&u, f) == 2);
		fclose(f);
		p = u.lru_tail;
		CHECK(p->n_dests == BHV_MAX_DESTS && p->n_helos == 0 && p->rejects_head <= 3 &&
		      p->sess_head < BHV_MAX_SESS && strlen(p->exe) == sizeof(p->exe) - 1);
		bhv_free(&u);
	}
	free(buf);
	bhv_free(&t);
}

int main(void)
{
	RUN(test_fanout);
	RUN(test_rate_and_helo_varies);
	RUN(test_non_mta_direct);
	RUN(test_session_rules_and_wire);
	RUN(test_alert_once_per_window);
	RUN(test_bounded_table);
	RUN(test_save_and_load);
	CHECK_EXIT();
}
