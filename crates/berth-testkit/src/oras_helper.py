"""berth-testkit's driver of oras-py (PyPI `oras`, a library with no CLI).

Usage: python oras_helper.py COMMAND JSON-ARGS
Prints one line `ORAS-HELPER-RESULT <json>` with what came back, including a
log of every HTTP request oras-py made (method, path, status and the headers
that matter: Content-Range, Range, Location, OCI-Subject, digests), so the
Rust test asserts on the wire, not only on oras-py's return values.
Errors propagate as a non-zero exit with a Python traceback.
"""

import json
import sys
from urllib.parse import urlsplit

import oras.oci
import oras.provider

LOGGED_REQUEST_HEADERS = ("Content-Range", "Content-Type", "Content-Length")
LOGGED_RESPONSE_HEADERS = ("Range", "Location", "OCI-Subject", "Docker-Content-Digest", "Content-Type")


class Registry(oras.provider.Registry):
    """oras-py's registry client over plain HTTP, logging every request,
    and adding `artifactType` to the manifests it pushes (oras-py 0.2 has
    no parameter for it)."""

    def __init__(self, artifact_type=None):
        super().__init__(insecure=True)
        self.artifact_type = artifact_type
        self.log = []

    def do_request(self, url, method="GET", data=None, headers=None, json=None, stream=False):
        response = super().do_request(url, method, data=data, headers=headers, json=json, stream=stream)
        parts = urlsplit(url)
        sent = dict(response.request.headers)
        self.log.append(
            {
                "method": method,
                "path": parts.path + (f"?{parts.query}" if parts.query else ""),
                "status": response.status_code,
                "request": {k: sent[k] for k in LOGGED_REQUEST_HEADERS if k in sent},
                "response": {k: response.headers[k] for k in LOGGED_RESPONSE_HEADERS if k in response.headers},
            }
        )
        return response

    def upload_manifest(self, manifest, container):
        if self.artifact_type:
            manifest["artifactType"] = self.artifact_type
        self.pushed_manifest = manifest
        return super().upload_manifest(manifest, container)


def client_for(args, artifact_type=None):
    """A client; with `username`/`password` in args it logs in through the
    registry's token flow (oras-py's default auth backend)."""
    client = Registry(artifact_type)
    if args.get("username"):
        client.auth.set_basic_auth(args["username"], args["password"])
    return client


def push(args):
    client = client_for(args, args.get("artifact_type"))
    subject = args.get("subject")
    if subject:
        subject = oras.oci.Subject(subject["mediaType"], subject["digest"], subject["size"])
    config = args.get("config")
    response = client.push(
        target=args["target"],
        files=[f"{path}:{media_type}" for path, media_type in args["files"]],
        manifest_config=f"{config[0]}:{config[1]}" if config else None,
        manifest_annotations=args.get("annotations"),
        subject=subject,
        disable_path_validation=True,
        do_chunked=args.get("chunked", False),
        chunk_size=args.get("chunk_size", 16 * 1024 * 1024),
        quiet=True,
    )
    return {
        "status": response.status_code,
        "headers": dict(response.headers),
        "manifest": client.pushed_manifest,
        "log": client.log,
    }


def upload_blob(args):
    client = client_for(args)
    layer = oras.oci.NewLayer(args["path"])
    response = client.upload_blob(
        args["path"], args["target"], layer, do_chunked=args.get("chunked", False), chunk_size=args["chunk_size"]
    )
    return {"status": response.status_code, "digest": layer["digest"], "size": layer["size"], "log": client.log}


def pull(args):
    client = client_for(args)
    files = client.pull(target=args["target"], outdir=args["outdir"])
    manifest = client.get_manifest(args["target"])
    return {"files": files, "manifest": manifest, "log": client.log}


def tags(args):
    client = client_for(args)
    return {"tags": client.get_tags(args["target"]), "log": client.log}


def delete_tag(args):
    client = client_for(args)
    try:
        deleted = client.delete_tag(args["target"], args["tag"])
        return {"deleted": deleted, "error": None, "log": client.log}
    except Exception as e:  # the spec's refusal surfaces as an exception
        return {"deleted": False, "error": str(e), "log": client.log}


COMMANDS = {"push": push, "upload_blob": upload_blob, "pull": pull, "tags": tags, "delete_tag": delete_tag}

if __name__ == "__main__":
    result = COMMANDS[sys.argv[1]](json.loads(sys.argv[2]))
    print("ORAS-HELPER-RESULT " + json.dumps(result), flush=True)
