# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""A spam bot's pattern, contained: one process, one bogus HELO, straight to many
'MX hosts' - all of them 127.0.0.N in the test's own namespace.

  bot_client.py PORT HELO N      sessions to 127.0.0.2 .. 127.0.0.(N+1)
"""
import smtplib
import sys

port, helo, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
for i in range(2, n + 2):
    c = smtplib.SMTP(f"127.0.0.{i}", port, local_hostname=helo, timeout=5)
    c.ehlo(helo)
    c.mail("promo@bulk.test.invalid")
    code, _ = c.rcpt(f"victim{i}@test.invalid")
    if code < 400:
        c.data(b"Subject: offer\r\n\r\nbuy now\r\n")
    c.quit()
