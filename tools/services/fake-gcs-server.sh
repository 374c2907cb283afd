#!/usr/bin/env bash
# Installs fake-gcs-server (BSD-2-Clause), the Google Cloud Storage emulator
# stores/gcs's tests run the real GCS client against, into $(go env GOPATH)/bin.
set -euo pipefail
version=v1.56.1
bin="$(go env GOPATH)/bin/fake-gcs-server"
if [[ -x "$bin" ]] && go version -m "$bin" 2>/dev/null | grep -q "github.com/fsouza/fake-gcs-server[[:space:]]*$version"; then
	echo "fake-gcs-server $version already installed at $bin"
	exit 0
fi
go install "github.com/fsouza/fake-gcs-server@$version"
echo "installed fake-gcs-server $version at $bin"
