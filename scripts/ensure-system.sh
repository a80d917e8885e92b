#!/usr/bin/env bash
# Install what a bare machine lacks for mesh-gitops (Debian/Ubuntu): git, redis-server (the
# server's built-in Redis and the runtime tests start their own), python3-venv, and gpg and
# ssh-keygen (commit signature verification, `gitops.repo.verify: head`, and its tests).
set -euo pipefail
need_apt=()
command -v git >/dev/null 2>&1 || need_apt+=(git)
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v gpg >/dev/null 2>&1 || need_apt+=(gnupg)
command -v ssh-keygen >/dev/null 2>&1 || need_apt+=(openssh-client)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need_apt+=(python3-venv)
if [ "${#need_apt[@]}" -gt 0 ]; then
  sudo_cmd=""
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need_apt[@]}"
fi
