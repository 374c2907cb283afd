package runtime

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// The checkpoint file outlives a release: a store directory written by one
// version is reopened by the next, which restores only the changelog tail
// after the offset it reads. testdata/checkpoint-v1 holds one as written
// (file name and bytes).
const goldenCheckpointDir = "testdata/checkpoint-v1"

func TestCheckpointFileGolden(t *testing.T) {
	golden, err := os.ReadFile(filepath.Join(goldenCheckpointDir, ".changelog-offset"))
	if err != nil {
		t.Fatal(err)
	}

	// Reading what an earlier version wrote.
	off, err := readCheckpoint(goldenCheckpointDir)
	if err != nil || off != 12345 {
		t.Fatalf("readCheckpoint(golden) = %d, %v; want 12345", off, err)
	}

	// Writing the same bytes, under the same name, with nothing left over.
	dir := t.TempDir()
	if err := writeCheckpoint(dir, 12345); err != nil {
		t.Fatal(err)
	}
	written, err := os.ReadFile(filepath.Join(dir, ".changelog-offset"))
	if err != nil {
		t.Fatalf("checkpoint not written under its pinned name: %v", err)
	}
	if !bytes.Equal(written, golden) {
		t.Fatalf("writeCheckpoint wrote %q, the pinned format is %q", written, golden)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("state directory holds %d files after a checkpoint, want 1 (no temporary file left)", len(entries))
	}

	// Overwriting, and reading back.
	if err := writeCheckpoint(dir, 1<<40); err != nil {
		t.Fatal(err)
	}
	if off, err := readCheckpoint(dir); err != nil || off != 1<<40 {
		t.Fatalf("after rewriting: %d, %v", off, err)
	}
}

func TestCheckpointFileEdgeCases(t *testing.T) {
	// No checkpoint: -1 (restore everything), not an error.
	if off, err := readCheckpoint(t.TempDir()); err != nil || off != -1 {
		t.Fatalf("missing checkpoint: %d, %v; want -1, nil", off, err)
	}
	for _, tc := range []struct {
		content string
		want    int64 // -1: an error
	}{
		{"0\n", 0},
		{"42", 42},                     // no newline
		{" 42 \r\n", 42},               // surrounding space
		{"", -1},                       // empty: a crash before the first write cannot leave this (rename is atomic)
		{"abc\n", -1},                  // corrupt
		{"-5\n", -1},                   // negative
		{"12 34\n", -1},                // two numbers
		{"99999999999999999999\n", -1}, // overflow
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, ".changelog-offset"), []byte(tc.content), 0o644); err != nil {
			t.Fatal(err)
		}
		off, err := readCheckpoint(dir)
		switch {
		case tc.want < 0 && err == nil:
			t.Errorf("checkpoint %q: read %d, want an error", tc.content, off)
		case tc.want >= 0 && (err != nil || off != tc.want):
			t.Errorf("checkpoint %q: %d, %v; want %d", tc.content, off, err, tc.want)
		}
	}
}
