# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""A scriptable SMTP server for the evidence tests, on every 127.0.0.0/8 address of
its namespace: destinations whose last octet is even refuse RCPT with a blocklist
text, the others accept. Serves at most MAX sessions, then exits.

  mx_server.py PORT MAX
"""
import asyncio
import sys

PORT, MAX = int(sys.argv[1]), int(sys.argv[2])
LISTED = ("554 5.7.1 Service unavailable; Client host [{ip}] blocked using zen.spamhaus.org; "
          "https://www.spamhaus.org/query/ip/{ip}\r\n")
served = 0
done = asyncio.Event()


async def session(reader, writer):
    global served
    local = writer.get_extra_info("sockname")[0]
    peer = writer.get_extra_info("peername")[0]
    refuse = int(local.split(".")[-1]) % 2 == 0
    writer.write(b"220 mx.test.example ESMTP\r\n")
    try:
        while True:
            line = await asyncio.wait_for(reader.readline(), 10)
            if not line:
                break
            verb = line[:4].upper()
            if verb == b"EHLO":
                writer.write(b"250-mx.test.example\r\n250 PIPELINING\r\n")
            elif verb == b"RCPT" and refuse:
                writer.write(LISTED.format(ip=peer).encode())
            elif verb == b"DATA":
                writer.write(b"354 go ahead\r\n")
                while (await asyncio.wait_for(reader.readline(), 10)) not in (b".\r\n", b""):
                    pass
                writer.write(b"250 2.0.0 queued\r\n")
            elif verb == b"QUIT":
                writer.write(b"221 2.0.0 bye\r\n")
                await writer.drain()
                break
            else:
                writer.write(b"250 2.0.0 ok\r\n")
            await writer.drain()
    except (asyncio.TimeoutError, ConnectionError):
        pass
    writer.close()
    served += 1
    if served >= MAX:
        done.set()


async def main():
    server = await asyncio.start_server(session, "0.0.0.0", PORT)
    async with server:
        try:
            await asyncio.wait_for(done.wait(), 120)
        except asyncio.TimeoutError:
            pass


asyncio.run(main())
