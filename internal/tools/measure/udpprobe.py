#!/usr/bin/env python3
"""udpprobe.py PORT: 300 datagrams to 127.0.0.1:PORT, one at a time, 5 ms apart;
prints their round trips (p50, p90, p99, max). Used beside a TCP load to see
whether datagrams wait for a busy loop (BENCHMARKS.md)."""
import socket, sys, time

port=int(sys.argv[1]); s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
rtts=[]
for i in range(300):
    t=time.perf_counter(); s.sendto(b"ping %d\n"%i, ("127.0.0.1",port))
    try: s.recvfrom(100); rtts.append((time.perf_counter()-t)*1e6)
    except socket.timeout: rtts.append(2e6)
    time.sleep(0.005)
rtts.sort(); print("udp rtt us: p50 %.0f p90 %.0f p99 %.0f max %.0f" % (rtts[150], rtts[270], rtts[297], rtts[-1]))
