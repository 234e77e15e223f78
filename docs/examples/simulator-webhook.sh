#!/usr/bin/env bash
# Signs in to the simulator as a simulated user through its authorize page, subscribes a
# local webhook receiver to that user's stream.online, and triggers one: the receiver answers
# the verification challenge, then gets a signed notification and verifies it.
# Needs: a running `sev sim` (SIM, default http://127.0.0.1:8090), curl, python3.
set -euo pipefail
SIM=${SIM:-http://127.0.0.1:8090}
CLIENT_ID=sevdemoclient00000000000000000
CLIENT_SECRET=sevdemosecret0000000000000000000
REDIRECT=http://localhost:3000/callback
SECRET=webhook-secret-0123456789
PORT=${PORT:-8091}
here=$(dirname "$0")

# 1. The authorize page, as a browser would submit it: approve as favstreamer.
location=$(curl -s -o /dev/null -w '%{redirect_url}' "$SIM/oauth2/authorize" \
  --data-urlencode "client_id=$CLIENT_ID" --data-urlencode "redirect_uri=$REDIRECT" \
  --data-urlencode "scope=user:read:chat" --data-urlencode "state=demo-state" \
  --data-urlencode "login=favstreamer" --data-urlencode "decision=approve")
code=$(sed -E 's/.*[?&]code=([^&]+).*/\1/' <<<"$location")
echo "redirected to $location"

# 2. Exchange the code for the user's tokens, and validate them.
user_token=$(curl -s "$SIM/oauth2/token" -d "client_id=$CLIENT_ID" -d "client_secret=$CLIENT_SECRET" \
  -d "code=$code" -d grant_type=authorization_code --data-urlencode "redirect_uri=$REDIRECT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
curl -s "$SIM/oauth2/validate" -H "Authorization: OAuth $user_token"; echo

# 3. Webhook subscriptions need the app token (client credentials).
app_token=$(curl -s "$SIM/oauth2/token" -d "client_id=$CLIENT_ID" -d "client_secret=$CLIENT_SECRET" \
  -d grant_type=client_credentials | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

# 4. The receiver, then the subscription: the simulator sends the challenge at once.
python3 "$here/webhook-receiver.py" "$PORT" "$SECRET" &
receiver=$!
trap 'kill $receiver' EXIT
sleep 0.5
curl -s "$SIM/helix/eventsub/subscriptions" -H "Authorization: Bearer $app_token" -H "Client-Id: $CLIENT_ID" \
  -H 'Content-Type: application/json' \
  -d "{\"type\":\"stream.online\",\"version\":\"1\",\"condition\":{\"broadcaster_user_id\":\"4242\"},
       \"transport\":{\"method\":\"webhook\",\"callback\":\"http://127.0.0.1:$PORT/eventsub\",\"secret\":\"$SECRET\"}}"; echo
sleep 1

# 5. Trigger the event (the same as `sev trigger stream.online --sim $SIM`).
curl -s "$SIM/_sim/trigger" -H 'Content-Type: application/json' -d '{"type":"stream.online","broadcaster":"favstreamer"}' >/dev/null
sleep 1
