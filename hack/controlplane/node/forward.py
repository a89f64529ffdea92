#!/usr/bin/env python3
"""Loopback port forward from the machine's network namespace into the node's.

Started by node/init inside the node's network namespace with fd 3 open on the machine's
network namespace. It creates its listening socket in the machine's namespace, on 127.0.0.1
only, then returns to the node's namespace, where every accepted connection is forwarded to
TARGET (the apiserver). Sockets keep the namespace they were created in, so one process serves
both sides. It runs in the node's PID namespace: it dies with the node.

  forward.py LISTEN_PORT TARGET_HOST TARGET_PORT
"""

import ctypes
import os
import socket
import sys
import threading

CLONE_NEWNET = 0x40000000
HOST_NETNS_FD = 3


def setns(fd):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, "setns: " + os.strerror(err))


def pipe(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve(client, target):
    try:
        upstream = socket.create_connection(target, timeout=10)
        upstream.settimeout(None)
    except OSError as e:
        print(f"forward: connect {target}: {e}", file=sys.stderr, flush=True)
        client.close()
        return
    threading.Thread(target=pipe, args=(client, upstream), daemon=True).start()
    pipe(upstream, client)
    client.close()
    upstream.close()


def main():
    port, host, tport = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    own = os.open("/proc/self/ns/net", os.O_RDONLY)
    setns(HOST_NETNS_FD)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(128)
    setns(own)
    os.close(HOST_NETNS_FD)
    os.close(own)
    print(f"forward: 127.0.0.1:{port} (machine) -> {host}:{tport} (node)", file=sys.stderr, flush=True)
    while True:
        client, _ = listener.accept()
        threading.Thread(target=serve, args=(client, (host, tport)), daemon=True).start()


if __name__ == "__main__":
    main()
