// Package testutil finds the shared corpus and external tools for tests.
//
// Under CI=true a missing corpus or tool fails the test instead of
// skipping it, so CI cannot pass while checking nothing.
package testutil

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
)

// CI reports whether the tests run under CI=true.
func CI() bool { return os.Getenv("CI") == "true" }

// Missing skips t, or fails it under CI, with the reason.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if CI() {
		t.Fatalf("CI=true: "+format, args...)
	}
	t.Skipf(format, args...)
}

// RepoRoot returns the module root.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// CorpusDir returns ../shared/corpus beside the repository (or
// $VHD_CORPUS), skipping or failing t when it is absent.
func CorpusDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("VHD_CORPUS")
	if dir == "" {
		dir = filepath.Join(RepoRoot(), "..", "shared", "corpus")
	}
	if _, err := os.Stat(filepath.Join(dir, "MANIFEST.md")); err != nil {
		Missing(t, "corpus not found at %s (set VHD_CORPUS): %v", dir, err)
	}
	return dir
}

// Corpus decompresses the corpus file name (e.g. "win7dyn.vhd.xz") into
// a fresh temporary directory and returns the path of the decompressed
// file (e.g. ".../win7dyn.vhd"). Sparse files stay sparse.
func Corpus(t testing.TB, name string) string {
	t.Helper()
	src := filepath.Join(CorpusDir(t), name)
	var tool string
	switch filepath.Ext(name) {
	case ".xz":
		tool = "xz"
	case ".bz2":
		tool = "bzip2"
	default:
		t.Fatalf("testutil: unknown compression for %s", name)
	}
	Tool(t, tool)
	base := name[:len(name)-len(filepath.Ext(name))]
	dst := filepath.Join(t.TempDir(), base)
	// dd conv=sparse keeps the huge all-zero images small on disk.
	cmd := exec.Command("sh", "-c", tool+` -dc "$1" | dd of="$2" bs=64k conv=sparse status=none`, "sh", src, dst)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("decompress %s: %v\n%s", name, err, out)
	}
	return dst
}

// Tool returns the path of an external command, skipping or failing t
// when it is not installed.
func Tool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, "%s not installed (make test installs it)", name)
	}
	return p
}

// Run runs a command and returns its stdout; it fails t with the
// command's output on error.
func Run(t testing.TB, name string, args ...string) []byte {
	t.Helper()
	Tool(t, name)
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %v: %v\nstdout:\n%s\nstderr:\n%s", name, args, err, stdout.Bytes(), stderr.Bytes())
	}
	return stdout.Bytes()
}

// SHA256 returns the hex sha256 of the first size bytes read from r.
func SHA256(t testing.TB, r io.ReaderAt, size int64) string {
	t.Helper()
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(r, 0, size)); err != nil {
		t.Fatalf("hash: %v", err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// AssertOnly fails t if dir holds anything but the names in keep: a
// failed or finished conversion must leave no temporary file behind.
func AssertOnly(t testing.TB, dir string, keep ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var extra []string
	for _, e := range ents {
		if !slices.Contains(keep, e.Name()) {
			extra = append(extra, e.Name())
		}
	}
	if len(extra) > 0 {
		t.Fatalf("%s holds leftover files %q", dir, extra)
	}
}
