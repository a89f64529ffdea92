#!/usr/bin/env python3
"""Writes and reads OCI image archives (an OCI image layout in one tar) with the standard
library only: no Docker, no registry, no buildkit.

  oci.py build --out IMAGE.tar --name REF [--user U] [--entrypoint JSON] [--cmd JSON]
               [--port 8443/tcp ...] [--env K=V ...] [--workdir DIR] --layer ROOTFS [...]
  oci.py inspect IMAGE.tar      prints {"name", "config", "files": {path: {mode, uid, gid, type}}}

Each --layer is a directory turned into one uncompressed layer, in order. Entries are sorted
and every mtime is SOURCE_DATE_EPOCH (default 0), so the same inputs give the same digests.
`ctr images import` reads the result; the name is in the io.containerd.image.name annotation.
"""

import argparse
import hashlib
import io
import json
import os
import sys
import tarfile

LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"


def mtime():
    return int(os.environ.get("SOURCE_DATE_EPOCH", "0"))


def layer_bytes(root):
    """One deterministic tar of the tree under root (owners and modes kept, times fixed)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        paths = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(dirnames + filenames):
                paths.append(os.path.join(dirpath, name))
        for path in sorted(paths, key=lambda p: os.path.relpath(p, root)):
            info = tar.gettarinfo(path, arcname=os.path.relpath(path, root))
            info.mtime = mtime()
            info.uname = info.gname = ""
            if info.isfile():
                with open(path, "rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
    return buf.getvalue()


def blob(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def add_bytes(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = mtime()
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def build(args):
    layers = [layer_bytes(d) for d in args.layer]
    config = {"Env": args.env or ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}
    if args.user:
        config["User"] = args.user
    if args.entrypoint:
        config["Entrypoint"] = json.loads(args.entrypoint)
    if args.cmd:
        config["Cmd"] = json.loads(args.cmd)
    if args.port:
        config["ExposedPorts"] = {p if "/" in p else p + "/tcp": {} for p in args.port}
    if args.workdir:
        config["WorkingDir"] = args.workdir
    image_config = {
        "architecture": "amd64",
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [blob(layer) for layer in layers]},
        "history": [{"created_by": "hack/oci.py layer " + os.path.basename(d.rstrip("/"))} for d in args.layer],
    }
    config_bytes = json.dumps(image_config, sort_keys=True, separators=(",", ":")).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": {"mediaType": CONFIG_TYPE, "digest": blob(config_bytes), "size": len(config_bytes)},
        "layers": [{"mediaType": LAYER_TYPE, "digest": blob(layer), "size": len(layer)} for layer in layers],
    }
    manifest_bytes = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    tag = args.name.rsplit(":", 1)[1] if ":" in args.name.rsplit("/", 1)[-1] else "latest"
    index = {
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": MANIFEST_TYPE,
            "digest": blob(manifest_bytes),
            "size": len(manifest_bytes),
            "annotations": {"io.containerd.image.name": args.name, "org.opencontainers.image.ref.name": tag},
        }],
    }
    tmp = args.out + ".tmp"
    with tarfile.open(tmp, mode="w", format=tarfile.PAX_FORMAT) as tar:
        add_bytes(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add_bytes(tar, "index.json", json.dumps(index, sort_keys=True).encode())
        seen = set()
        for data in [config_bytes, manifest_bytes] + layers:
            digest = blob(data)
            if digest not in seen:
                seen.add(digest)
                add_bytes(tar, "blobs/sha256/" + digest.split(":", 1)[1], data)
    os.replace(tmp, args.out)
    print(f"{args.name} {blob(manifest_bytes)} {os.path.getsize(args.out)} bytes")


def read_blob(tar, digest):
    return tar.extractfile("blobs/sha256/" + digest.split(":", 1)[1]).read()


def inspect(args):
    with tarfile.open(args.image) as tar:
        index = json.load(tar.extractfile("index.json"))
        desc = index["manifests"][0]
        manifest = json.loads(read_blob(tar, desc["digest"]))
        config = json.loads(read_blob(tar, manifest["config"]["digest"]))
        files = {}
        for layer in manifest["layers"]:
            with tarfile.open(fileobj=io.BytesIO(read_blob(tar, layer["digest"]))) as lt:
                for m in lt.getmembers():
                    kind = "dir" if m.isdir() else "symlink" if m.issym() else "file" if m.isfile() else "other"
                    entry = {"mode": m.mode, "uid": m.uid, "gid": m.gid, "type": kind}
                    if m.issym():
                        entry["target"] = m.linkname
                    files["/" + m.name.lstrip("./")] = entry
    name = desc.get("annotations", {}).get("io.containerd.image.name", "")
    json.dump({"name": name, "config": config, "files": files}, sys.stdout, sort_keys=True)
    print()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build")
    b.add_argument("--out", required=True)
    b.add_argument("--name", required=True)
    b.add_argument("--user")
    b.add_argument("--entrypoint", help="JSON array")
    b.add_argument("--cmd", help="JSON array")
    b.add_argument("--port", action="append")
    b.add_argument("--env", action="append")
    b.add_argument("--workdir")
    b.add_argument("--layer", action="append", required=True)
    i = sub.add_parser("inspect")
    i.add_argument("image")
    args = p.parse_args()
    build(args) if args.command == "build" else inspect(args)


if __name__ == "__main__":
    main()
