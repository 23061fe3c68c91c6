package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vhdkit/vhd"
	"github.com/vhdkit/vhd/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// testdata is absolute, since tests change directory.
var testdata, _ = filepath.Abs("testdata")

const mib = 1 << 20

// run runs the command and returns its exit status, stdout and stderr.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return runCtx(t, context.Background(), args...)
}

func runCtx(t *testing.T, ctx context.Context, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := Run(ctx, args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// mustRun runs the command and fails t unless it exits with want.
func mustRun(t *testing.T, want int, args ...string) string {
	t.Helper()
	code, out, errOut := run(t, args...)
	if code != want {
		t.Fatalf("vhd %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s",
			strings.Join(args, " "), code, want, out, errOut)
	}
	return out
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join(testdata, name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test -update rewrites it)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

func TestInfoGolden(t *testing.T) {
	t.Run("raw", func(t *testing.T) {
		dir := t.TempDir()
		t.Chdir(dir)
		if err := os.WriteFile("disk.img", make([]byte, 3*mib+512), 0o644); err != nil {
			t.Fatal(err)
		}
		golden(t, "info-raw.golden", mustRun(t, 0, "info", "disk.img"))
		golden(t, "info-raw.json.golden", mustRun(t, 0, "info", "--json", "disk.img"))
	})
	for _, name := range []string{"img-1x1-512-gpt.vhdx", "iotest-dynamic-1G.vhdx", "win7dyn.vhd"} {
		t.Run(name, func(t *testing.T) {
			comp := ".xz"
			if strings.HasPrefix(name, "iotest") {
				comp = ".bz2"
			}
			path := testutil.Corpus(t, name+comp)
			t.Chdir(filepath.Dir(path))
			golden(t, "info-"+name+".golden", mustRun(t, 0, "info", name))
			golden(t, "info-"+name+".json.golden", mustRun(t, 0, "info", "--json", name))
		})
	}
}

func TestInfoJSON(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "d.vhdx")
	mustRun(t, 0, "create", path, "--size", "64M", "--block-size", "1M",
		"--logical-sector-size", "4096")
	var info struct {
		Format            string         `json:"format"`
		Type              string         `json:"type"`
		VirtualSize       int64          `json:"virtual_size"`
		BlockSize         uint32         `json:"block_size"`
		LogicalSectorSize uint32         `json:"logical_sector_size"`
		ID                string         `json:"id"`
		Details           map[string]any `json:"details"`
	}
	out := mustRun(t, 0, "info", "--json", path)
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("info --json is not JSON: %v\n%s", err, out)
	}
	if info.Format != "vhdx" || info.Type != "dynamic" || info.VirtualSize != 64*mib ||
		info.BlockSize != mib || info.LogicalSectorSize != 4096 || info.ID == "" {
		t.Fatalf("info --json = %+v", info)
	}
	if _, ok := info.Details["log_state"]; !ok {
		t.Errorf("info --json has no log state in details: %v", info.Details)
	}
}

func TestCreate(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		file string
		args []string
		want vhd.Info
	}{
		{"dyn.vhdx", []string{"--size", "10G"},
			vhd.Info{Format: vhd.FormatVHDX, Type: vhd.TypeDynamic, VirtualSize: 10 << 30, BlockSize: 32 * mib}},
		{"fixed.vhd", []string{"--size", "3M", "--type", "fixed"},
			vhd.Info{Format: vhd.FormatVHD, Type: vhd.TypeFixed, VirtualSize: 3 * mib}},
		{"odd.vhd", []string{"--size", "3146240"},
			vhd.Info{Format: vhd.FormatVHD, Type: vhd.TypeDynamic, VirtualSize: 3*mib + 512, BlockSize: 2 * mib}},
		{"raw.bin", []string{"--size", "1.5M"},
			vhd.Info{Format: vhd.FormatRaw, Type: vhd.TypeFixed, VirtualSize: 3 * mib / 2}},
		{"forced", []string{"--size", "8M", "--format", "vhdx", "--block-size", "1M"},
			vhd.Info{Format: vhd.FormatVHDX, Type: vhd.TypeDynamic, VirtualSize: 8 * mib, BlockSize: mib}},
		{"child.vhdx", []string{"--parent", "dyn.vhdx"},
			vhd.Info{Format: vhd.FormatVHDX, Type: vhd.TypeDifferencing, VirtualSize: 10 << 30, BlockSize: 32 * mib}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join(dir, tc.file)
			args := append([]string{"create", path}, tc.args...)
			for i, a := range args {
				if a == "dyn.vhdx" {
					args[i] = filepath.Join(dir, a)
				}
			}
			mustRun(t, 0, args...)
			d, err := vhd.Open(path, &vhd.OpenOptions{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			got := d.Info()
			if got.Format != tc.want.Format || got.Type != tc.want.Type ||
				got.VirtualSize != tc.want.VirtualSize || got.BlockSize != tc.want.BlockSize {
				t.Fatalf("created %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestUsage(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		code int
	}{
		{"help", []string{"-h"}, 0},
		{"subcommand help", []string{"convert", "--help"}, 0},
		{"unknown flag", []string{"info", "--bogus", "x"}, 2},
		{"unknown command", []string{"frobnicate"}, 2},
		{"missing argument", []string{"info"}, 2},
		{"missing size", []string{"create", filepath.Join(dir, "x.vhdx")}, 2},
		{"bad size", []string{"create", filepath.Join(dir, "x.vhdx"), "--size", "10Q"}, 2},
		{"bad type", []string{"create", filepath.Join(dir, "x.vhdx"), "--size", "1M", "--type", "sparkly"}, 2},
		{"no extension", []string{"create", filepath.Join(dir, "x"), "--size", "1M"}, 2},
		{"missing file", []string{"info", filepath.Join(dir, "nope.vhdx")}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := run(t, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out, errOut)
			}
			if tc.code == 0 && !strings.Contains(out, "Usage:") {
				t.Fatalf("help not on stdout:\n%s", out)
			}
			if tc.code != 0 && !strings.HasPrefix(errOut, "vhd: ") {
				t.Fatalf("no error message on stderr: %q", errOut)
			}
		})
	}
	testutil.AssertOnly(t, dir)
}

// writeRaw writes a raw image of size bytes with 1 MiB of bytes v at
// each offset given.
func writeRaw(t *testing.T, path string, size int64, writes map[int64]byte) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	for off, v := range writes {
		if _, err := f.WriteAt(bytes.Repeat([]byte{v}, mib), off); err != nil {
			t.Fatal(err)
		}
	}
}

func TestConvertCompare(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "in.img")
	writeRaw(t, src, 40*mib, map[int64]byte{0: 1, 17 * mib: 2, 39 * mib: 3})
	for _, out := range []string{"out.vhdx", "out.vhd", "out.raw"} {
		dst := filepath.Join(dir, out)
		mustRun(t, 0, "convert", "--progress", src, dst)
		if got := mustRun(t, 0, "compare", src, dst); got != "identical\n" {
			t.Fatalf("compare %s: %q, want identical", out, got)
		}
	}
	// Existing destination: refused, then replaced with --force.
	code, _, errOut := run(t, "convert", src, filepath.Join(dir, "out.vhdx"))
	if code != 2 || !strings.Contains(errOut, "exists") {
		t.Fatalf("convert over an existing file: exit %d, %q", code, errOut)
	}
	if !strings.Contains(errOut, "--force") {
		t.Errorf("refusal does not mention --force: %q", errOut)
	}
	mustRun(t, 0, "convert", "--force", "--type", "fixed", src, filepath.Join(dir, "out.vhdx"))

	// 4 KiB logical sectors, read back by libvhdi too.
	k4 := filepath.Join(dir, "4k.vhdx")
	mustRun(t, 0, "convert", "--logical-sector-size", "4096", src, k4)
	if got := mustRun(t, 0, "compare", src, k4); got != "identical\n" {
		t.Fatalf("compare 4k.vhdx: %q", got)
	}
	if out := mustRun(t, 0, "info", k4); !strings.Contains(out, "logical sector size:   4096") {
		t.Errorf("info of 4k.vhdx:\n%s", out)
	}
	if out := testutil.Run(t, "vhdiinfo", k4); !strings.Contains(string(out), "Bytes per sector\t: 4096") {
		t.Errorf("vhdiinfo of 4k.vhdx:\n%s", out)
	}
	os.Remove(k4)

	other := filepath.Join(dir, "other.img")
	writeRaw(t, other, 40*mib, map[int64]byte{0: 1, 17 * mib: 2, 39 * mib: 4})
	if got := mustRun(t, 1, "compare", filepath.Join(dir, "out.vhdx"), other); got != "differ at offset 40894464\n" {
		t.Fatalf("compare different disks: %q", got)
	}
	shorter := filepath.Join(dir, "short.img")
	writeRaw(t, shorter, 39*mib, map[int64]byte{0: 1, 17 * mib: 2})
	if got := mustRun(t, 1, "compare", src, shorter); got != "differ at offset 40894464: sizes 41943040 and 40894464\n" {
		t.Fatalf("compare disks of different sizes: %q", got)
	}
	testutil.AssertOnly(t, dir, "in.img", "out.vhdx", "out.vhd", "out.raw", "other.img", "short.img")
}

// failingDisk fails reads that reach failAt.
type failingDisk struct {
	vhd.Disk
	failAt int64
}

var errInjected = errors.New("injected read failure")

func (d failingDisk) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > d.failAt {
		return 0, errInjected
	}
	return d.Disk.ReadAt(p, off)
}

// TestConvertFailureLeavesNothing makes the source fail midway and
// cancels another conversion: neither leaves a file behind.
func TestConvertFailureLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "in.img")
	writes := map[int64]byte{}
	for off := int64(0); off < 32*mib; off += mib {
		writes[off] = byte(off>>20) + 1
	}
	writeRaw(t, src, 32*mib, writes)

	orig := openSource
	t.Cleanup(func() { openSource = orig })
	openSource = func(path string, o *vhd.OpenOptions) (vhd.Disk, error) {
		d, err := orig(path, o)
		if err != nil {
			return nil, err
		}
		return failingDisk{d, 20 * mib}, nil
	}
	for _, out := range []string{"out.vhdx", "out.vhd", "out.img"} {
		code, _, errOut := run(t, "convert", src, filepath.Join(dir, out))
		if code != 2 || !strings.Contains(errOut, errInjected.Error()) {
			t.Fatalf("convert from a failing source: exit %d, %q", code, errOut)
		}
		testutil.AssertOnly(t, dir, "in.img")
	}
	openSource = orig

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	code, _, errOut := runCtx(t, ctx, "convert", src, filepath.Join(dir, "out.vhdx"))
	if code != 2 || !strings.Contains(errOut, "canceled") {
		t.Fatalf("cancelled convert: exit %d, %q", code, errOut)
	}
	testutil.AssertOnly(t, dir, "in.img")
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "in.img")
	writeRaw(t, src, 30*mib+4096, map[int64]byte{mib: 9})
	good := filepath.Join(dir, "good.vhdx")
	mustRun(t, 0, "convert", src, good)
	if out := mustRun(t, 0, "check", good); out != "OK\n" {
		t.Fatalf("check of a good VHDX: %q", out)
	}

	// Azure: our --azure output passes, a dynamic VHD does not.
	azure := filepath.Join(dir, "azure.vhd")
	mustRun(t, 0, "convert", "--azure", src, azure)
	mustRun(t, 0, "check", "--azure", azure)
	dyn := filepath.Join(dir, "dyn.vhd")
	mustRun(t, 0, "convert", src, dyn)
	out := mustRun(t, 1, "check", "--azure", dyn)
	if !strings.Contains(out, "error") || !strings.HasSuffix(out, "found\n") {
		t.Fatalf("check --azure of a dynamic VHD:\n%s", out)
	}
	out = mustRun(t, 1, "check", "--azure", good)
	if !strings.Contains(out, "azure.format") {
		t.Fatalf("check --azure of a VHDX:\n%s", out)
	}

	// A damaged footer checksum at the end of a dynamic VHD.
	b, err := os.ReadFile(dyn)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-512+64] ^= 0xff
	bad := filepath.Join(dir, "bad.vhd")
	if err := os.WriteFile(bad, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out = mustRun(t, 1, "check", bad)
	if !strings.Contains(out, "error") || !strings.HasSuffix(out, "found\n") {
		t.Fatalf("check of a damaged VHD:\n%s", out)
	}
	var r struct {
		Findings []struct {
			Severity string `json:"severity"`
			Offset   int64  `json:"offset"`
			Rule     string `json:"rule"`
		} `json:"findings"`
		Errors int `json:"errors"`
	}
	out = mustRun(t, 1, "check", "--json", bad)
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("check --json is not JSON: %v\n%s", err, out)
	}
	if r.Errors == 0 || len(r.Findings) == 0 || r.Findings[0].Severity != "error" ||
		r.Findings[0].Rule == "" {
		t.Fatalf("check --json of a damaged VHD: %+v", r)
	}
	if after, _ := os.ReadFile(bad); !bytes.Equal(after, b) {
		t.Fatal("check changed the file it checked")
	}
}

func TestMap(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "in.img")
	writeRaw(t, src, 8*mib, map[int64]byte{2 * mib: 1, 3 * mib: 2})
	d := filepath.Join(dir, "d.vhdx")
	mustRun(t, 0, "convert", "--block-size", "1M", src, d)
	out := mustRun(t, 0, "map", d)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.Contains(lines[0], "offset") ||
		!strings.Contains(lines[2], "2097152") || !strings.Contains(lines[2], "data") {
		t.Fatalf("map:\n%s", out)
	}
	var ext []struct {
		Offset     int64  `json:"offset"`
		Length     int64  `json:"length"`
		State      string `json:"state"`
		FileOffset int64  `json:"file_offset"`
		Depth      int    `json:"depth"`
	}
	out = mustRun(t, 0, "map", "--json", d)
	if err := json.Unmarshal([]byte(out), &ext); err != nil {
		t.Fatalf("map --json is not JSON: %v\n%s", err, out)
	}
	var pos int64
	for _, e := range ext {
		if e.Offset != pos {
			t.Fatalf("map --json has a gap at %d: %+v", pos, ext)
		}
		pos = e.Offset + e.Length
	}
	if pos != 8*mib || len(ext) != 3 || ext[1].State != "data" || ext[1].Length != 2*mib ||
		ext[1].FileOffset <= 0 || ext[0].FileOffset != -1 {
		t.Fatalf("map --json = %+v", ext)
	}
}

func TestInfoParentChain(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "base.vhdx")
	child := filepath.Join(dir, "child.vhdx")
	mustRun(t, 0, "create", base, "--size", "16M")
	mustRun(t, 0, "create", child, "--parent", base)
	out := mustRun(t, 0, "info", child)
	blocks := strings.Split(out, "\n\n")
	if len(blocks) != 2 || !strings.Contains(blocks[0], "type:") ||
		!strings.Contains(blocks[0], "differencing") ||
		!strings.Contains(blocks[0], "parent path:") ||
		!strings.HasPrefix(blocks[1], "parent:") || !strings.Contains(blocks[1], "base.vhdx") {
		t.Fatalf("info of a differencing disk:\n%s", out)
	}
	var info struct {
		Type   string `json:"type"`
		Parent *struct {
			Path string `json:"path"`
			Type string `json:"type"`
		} `json:"parent"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, 0, "info", "--json", child)), &info); err != nil {
		t.Fatal(err)
	}
	if info.Type != "differencing" || info.Parent == nil || info.Parent.Type != "dynamic" ||
		filepath.Base(info.Parent.Path) != "base.vhdx" {
		t.Fatalf("info --json of a differencing disk: %+v", info)
	}
}

func TestVerbose(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "in.img")
	writeRaw(t, src, 4*mib, map[int64]byte{0: 1})
	code, _, errOut := run(t, "convert", src, filepath.Join(dir, "quiet.vhdx"))
	if code != 0 || errOut != "" {
		t.Fatalf("convert without -v: exit %d, stderr %q", code, errOut)
	}
	code, out, errOut := run(t, "-v", "convert", src, filepath.Join(dir, "loud.vhdx"))
	if code != 0 || out != "" || !strings.Contains(errOut, "level=INFO msg=converted") {
		t.Fatalf("convert -v: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// TestCheckAzureQemu: a VHD made by qemu-img with its defaults (dynamic,
// size rounded to a CHS geometry) breaks Azure's rules; the same content
// converted with --azure passes them.
func TestCheckAzureQemu(t *testing.T) {
	dir := t.TempDir()
	q := filepath.Join(dir, "qemu.vhd")
	testutil.Run(t, "qemu-img", "create", "-q", "-f", "vpc", q, "30M")
	out := mustRun(t, 1, "check", "--azure", q)
	if !strings.Contains(out, "errors found") && !strings.Contains(out, "1 error found") {
		t.Fatalf("check --azure of a qemu-made VHD:\n%s", out)
	}
	// The content itself is a valid VHD.
	mustRun(t, 0, "check", q)
	fixed := filepath.Join(dir, "azure.vhd")
	mustRun(t, 0, "convert", "--azure", q, fixed)
	if out := mustRun(t, 0, "check", "--azure", fixed); !strings.HasPrefix(out, "OK") {
		t.Fatalf("check --azure of our --azure output:\n%s", out)
	}
	fi, err := os.Stat(fixed)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size()%mib != 512 {
		t.Fatalf("--azure output is %d bytes, want a whole number of MiB plus 512", fi.Size())
	}
}

// TestVersion: --version prints the program name and a version.
func TestVersion(t *testing.T) {
	var out, errb bytes.Buffer
	if rc := Run(context.Background(), []string{"--version"}, &out, &errb); rc != ExitOK {
		t.Fatalf("exit %d: %s", rc, errb.String())
	}
	if !strings.HasPrefix(out.String(), "vhd version ") {
		t.Errorf("--version printed %q", out.String())
	}
}

// TestConvertWarnings: convert says when the output's size differs from
// the source's and when --format contradicts DST's extension.
func TestConvertWarnings(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(src, []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := run(t, "convert", "--azure", src, filepath.Join(dir, "up.vhd"))
	if code != 0 || !strings.Contains(errOut, "dst-size=20971520") {
		t.Errorf("--azure of a 6-byte file: exit %d, stderr %q", code, errOut)
	}
	code, _, errOut = run(t, "convert", "--format", "vhdx", src, filepath.Join(dir, "x.vhd"))
	if code != 0 || !strings.Contains(errOut, "--format differs") {
		t.Errorf("--format vhdx to x.vhd: exit %d, stderr %q", code, errOut)
	}
	code, _, errOut = run(t, "convert", src, filepath.Join(dir, "same.img"))
	if code != 0 || errOut != "" {
		t.Errorf("raw copy: exit %d, stderr %q", code, errOut)
	}
}

// TestInfoBrokenChain: info on a child whose parent is gone prints the
// child alone, then fails naming the paths it tried.
func TestInfoBrokenChain(t *testing.T) {
	dir := t.TempDir()
	base, child := filepath.Join(dir, "base.vhdx"), filepath.Join(dir, "child.vhdx")
	mustRun(t, 0, "create", base, "--size", "16M")
	mustRun(t, 0, "create", child, "--parent", base)
	if err := os.Rename(base, base+".moved"); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run(t, "info", child)
	if code != 2 || !strings.Contains(out, "type:                  differencing") ||
		!strings.Contains(errOut, "parent chain broken") || !strings.Contains(errOut, "base.vhdx") {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	code, out, _ = run(t, "info", "--json", child)
	if code != 2 || !json.Valid([]byte(out)) {
		t.Errorf("--json: exit %d, %q", code, out)
	}
}

// TestCompareZeroTail: with --zero-tail a longer disk matches when it
// reads as zeros past the shorter one's end, and the first non-zero
// byte there is reported otherwise.
func TestCompareZeroTail(t *testing.T) {
	dir := t.TempDir()
	short, long, dirty := filepath.Join(dir, "s.img"), filepath.Join(dir, "l.vhdx"), filepath.Join(dir, "d.img")
	writeRaw(t, short, 4*mib, map[int64]byte{0: 1, 3 * mib: 2})
	mustRun(t, 0, "convert", "--azure", short, filepath.Join(dir, "l.vhd"))
	writeRaw(t, filepath.Join(dir, "l.img"), 8*mib, map[int64]byte{0: 1, 3 * mib: 2})
	mustRun(t, 0, "convert", filepath.Join(dir, "l.img"), long)
	writeRaw(t, dirty, 8*mib, map[int64]byte{0: 1, 3 * mib: 2, 6*mib + 5: 9})
	if got := mustRun(t, 1, "compare", short, long); !strings.Contains(got, "sizes") {
		t.Errorf("without --zero-tail: %q", got)
	}
	for _, other := range []string{long, filepath.Join(dir, "l.vhd")} {
		if got := mustRun(t, 0, "compare", "--zero-tail", short, other); !strings.HasPrefix(got, "identical") {
			t.Errorf("--zero-tail %s: %q", filepath.Base(other), got)
		}
	}
	if got := mustRun(t, 1, "compare", "--zero-tail", dirty, short); got != fmt.Sprintf("differ at offset %d\n", 6*mib+5) {
		t.Errorf("--zero-tail with data past the end: %q", got)
	}
}

// TestCheckMissingParent: check fails (exit 1) for a child whose parent
// is gone, in both formats.
func TestCheckMissingParent(t *testing.T) {
	for _, ext := range []string{".vhdx", ".vhd"} {
		dir := t.TempDir()
		base, child := filepath.Join(dir, "base"+ext), filepath.Join(dir, "child"+ext)
		mustRun(t, 0, "create", base, "--size", "16M")
		mustRun(t, 0, "create", child, "--parent", base)
		if err := os.Remove(base); err != nil {
			t.Fatal(err)
		}
		if out := mustRun(t, 1, "check", child); !strings.Contains(out, "error:") {
			t.Errorf("%s: %s", ext, out)
		}
	}
}
