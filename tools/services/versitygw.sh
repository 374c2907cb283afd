#!/usr/bin/env bash
# Installs versitygw (Versity S3 Gateway, Apache-2.0), the S3-compatible
# server stores/s3's tests run with its posix backend, into $(go env GOPATH)/bin.
set -euo pipefail
version=v1.8.0
bin="$(go env GOPATH)/bin/versitygw"
# go install records the module version in the binary (its --version says "git").
if [[ -x "$bin" ]] && go version -m "$bin" 2>/dev/null | grep -q "github.com/versity/versitygw[[:space:]]*$version"; then
	echo "versitygw $version already installed at $bin"
	exit 0
fi
go install "github.com/versity/versitygw/cmd/versitygw@$version"
echo "installed versitygw $version at $bin"
