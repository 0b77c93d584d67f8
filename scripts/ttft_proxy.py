"""An HTTP/1.1 relay that times what passes through it, written independently of llmbench.

Usage: ttft_proxy.py UPSTREAM_PORT LISTEN_PORT OUT.jsonl

For every POST it relays, it writes one line {"path", "ttft_ms"}: from the moment the last
byte of the request arrived from the client to the moment the first SSE `data:` event that
carries generated text (`choices[0].text` or `choices[0].delta.content`) arrived from the
server. Keep-alive connections and chunked bodies are handled; GETs are relayed untimed.
"""
import asyncio, json, sys, time

UP, LISTEN, OUT = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]


def has_text(line: bytes) -> bool:
    line = line.strip()
    if not line.startswith(b"data:") or line[5:].strip() == b"[DONE]":
        return False
    try:
        ch = (json.loads(line[5:]).get("choices") or [{}])[0]
    except ValueError:
        return False
    return bool(ch.get("text") or (ch.get("delta") or {}).get("content"))


async def read_head(r):
    head = await r.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    hdrs = {}
    for l in lines[1:]:
        if ":" in l:
            k, v = l.split(":", 1)
            hdrs[k.strip().lower()] = v.strip()
    return head, lines[0], hdrs


async def relay(cr, cw):
    ur, uw = await asyncio.open_connection("127.0.0.1", UP)
    try:
        while True:
            try:
                head, start, hdrs = await read_head(cr)
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            body = await cr.readexactly(int(hdrs.get("content-length", "0")))
            t_req = time.perf_counter()
            uw.write(head + body)
            await uw.drain()
            rhead, _, rh = await read_head(ur)
            cw.write(rhead)
            first = None
            pending = b""

            def scan(data, now):
                nonlocal first, pending
                pending += data
                *lines, pending = pending.split(b"\n")
                for l in lines:
                    if first is None and has_text(l):
                        first = now

            if rh.get("transfer-encoding", "").lower() == "chunked":
                while True:
                    size_line = await ur.readuntil(b"\r\n")
                    size = int(size_line.split(b";")[0], 16)
                    data = await ur.readexactly(size + 2)
                    now = time.perf_counter()
                    cw.write(size_line + data)
                    await cw.drain()
                    scan(data[:-2], now)
                    if size == 0:
                        break
            else:
                n = int(rh.get("content-length", "0"))
                data = await ur.readexactly(n)
                cw.write(data)
                await cw.drain()
            if start.startswith("POST"):
                with open(OUT, "a") as f:
                    ttft = None if first is None else (first - t_req) * 1e3
                    f.write(json.dumps({"path": start.split()[1], "ttft_ms": ttft}) + "\n")
    finally:
        uw.close()
        cw.close()


async def main():
    srv = await asyncio.start_server(relay, "127.0.0.1", LISTEN)
    async with srv:
        await srv.serve_forever()


asyncio.run(main())
