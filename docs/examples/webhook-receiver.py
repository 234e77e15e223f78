#!/usr/bin/env python3
"""A minimal EventSub webhook receiver for trying the simulator (or Twitch's CLI).

Answers verification challenges, checks every signature (HMAC-SHA256 over message id,
timestamp and raw body) and prints what arrived. Usage: webhook-receiver.py PORT SECRET
"""
import hashlib
import hmac
import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

PORT, SECRET = int(sys.argv[1]), sys.argv[2].encode()


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        h = lambda name: self.headers.get("Twitch-Eventsub-Message-" + name, "")
        expected = "sha256=" + hmac.new(SECRET, (h("Id") + h("Timestamp")).encode() + body, hashlib.sha256).hexdigest()
        ok = hmac.compare_digest(expected, h("Signature"))
        msg = json.loads(body)
        kind = h("Type")
        print(f"{kind}: signature {'verified' if ok else 'INVALID'}", flush=True)
        if not ok:
            self.send_response(403)
            self.end_headers()
            return
        if kind == "webhook_callback_verification":
            challenge = msg["challenge"].encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(challenge)))
            self.end_headers()
            self.wfile.write(challenge)
            return
        print(json.dumps(msg.get("event", msg.get("subscription")), indent=2), flush=True)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", PORT), Receiver).serve_forever()
