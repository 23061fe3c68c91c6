package vhdx

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"testing"

	"github.com/vhdkit/vhd/internal/testutil"
	"github.com/vhdkit/vhd/internal/vdisk"
)

// corpusCases are the VHDX files of the shared corpus with the facts
// MANIFEST.md states for them.
var corpusCases = []struct {
	name   string
	size   int64
	sha256 string
	typ    vdisk.Type
	block  uint32
	lss    uint32
}{
	{"iotest-dynamic-1G.vhdx.bz2", 1073741824, "d3d112d8dab7fd360609f7d5a7b769904b7a2a7d7b6b8c535f65a23293c05478", vdisk.TypeDynamic, 32 * miB, 512},
	{"test-disk2vhd.vhdx.bz2", 268435456, "96d964042be9b58dda1725567abfb0cf9fd8380e2118754afa979c2ad445938a", vdisk.TypeDynamic, 2 * miB, 512},
	{"img-1x1-512-gpt.vhdx.xz", 16777216, "280c1b4b079e88dbbe30af04c143e55b0f566d002fa255b55dc93f6489a69696", 0, 16 * miB, 512},
	{"img-1x1-4096-gpt.vhdx.xz", 16777216, "2c2fda97a24ff1afb57af33222c18318562d43c41681ee4deac654e8b0afbe3a", 0, 0, 512},
	{"iotest-dirtylog-10G-4M.vhdx.bz2", 10737418240, "179cefe8b0587f123393eedf2aa7aa8d25798591178e6bc3950a09762f38f96f", vdisk.TypeDynamic, 1 * miB, 512},
}

// fileSHA256 hashes a file's bytes.
func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// contentSHA256 hashes the virtual content, reading through Map so that
// the 10 GiB sparse disk does not take minutes: unallocated and zero
// extents are hashed as zeros without reading. The data extents are
// read with ReadAt.
func contentSHA256(t testing.TB, d *Disk) string {
	t.Helper()
	exts, err := d.Map(0, d.Size())
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	zero := make([]byte, miB)
	buf := make([]byte, 4*miB)
	for _, e := range exts {
		for off := e.Offset; off < e.End(); {
			n := min(e.End()-off, int64(len(buf)))
			if e.State != vdisk.Data {
				for r := n; r > 0; r -= min(r, miB) {
					h.Write(zero[:min(r, miB)])
				}
			} else {
				if _, err := d.ReadAt(buf[:n], off); err != nil {
					t.Fatalf("read %d: %v", off, err)
				}
				h.Write(buf[:n])
			}
			off += n
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// fullSHA256 hashes the content read with ReadAt only.
func fullSHA256(t testing.TB, d *Disk) string {
	t.Helper()
	return testutil.SHA256(t, d, d.Size())
}

func TestCorpus(t *testing.T) {
	for _, c := range corpusCases {
		t.Run(c.name, func(t *testing.T) {
			path := testutil.Corpus(t, c.name)
			before := fileSHA256(t, path)
			d, err := Open(path, &vdisk.OpenOptions{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if d.Size() != c.size {
				t.Errorf("size %d, want %d", d.Size(), c.size)
			}
			info := d.Info()
			if c.typ != 0 && info.Type != c.typ {
				t.Errorf("type %s, want %s", info.Type, c.typ)
			}
			if c.block != 0 && info.BlockSize != c.block {
				t.Errorf("block size %d, want %d", info.BlockSize, c.block)
			}
			if info.LogicalSectorSize != c.lss {
				t.Errorf("logical sector %d, want %d", info.LogicalSectorSize, c.lss)
			}
			if c.size > 1<<30 && testing.Short() {
				// Hashing 10 GiB takes seconds; the short run checks
				// the replayed content as MANIFEST.md describes it.
				assertDirtyLogContent(t, d)
			} else if got := contentSHA256(t, d); got != c.sha256 {
				t.Errorf("content sha256 %s, want %s", got, c.sha256)
			}
			if c.size <= 1<<30 && !testing.Short() {
				if got := fullSHA256(t, d); got != c.sha256 {
					t.Errorf("ReadAt-only content sha256 %s, want %s", got, c.sha256)
				}
			}
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			if after := fileSHA256(t, path); after != before {
				t.Errorf("read-only open changed the file")
			}
		})
	}
}

// TestCorpusPhysicalSector checks the 4096-byte physical sector item of
// the FreeBSD image.
func TestCorpusPhysicalSector(t *testing.T) {
	path := testutil.Corpus(t, "img-1x1-4096-gpt.vhdx.xz")
	d, err := Open(path, &vdisk.OpenOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if got := d.Info().PhysicalSectorSize; got != 4096 {
		t.Errorf("physical sector size %d, want 4096", got)
	}
}

// TestDirtyLogReadOnly: the read-only open shows the replayed content
// (0xa5 up to 18 MiB), says so in Info, and leaves the file unchanged
// (checked in TestCorpus too).
func TestDirtyLogReadOnly(t *testing.T) {
	path := testutil.Corpus(t, "iotest-dirtylog-10G-4M.vhdx.bz2")
	before := fileSHA256(t, path)
	d, err := Open(path, &vdisk.OpenOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if s := detail(d.Info(), "log_state"); s != "dirty (replayed in memory)" {
		t.Errorf("log_state %q", s)
	}
	buf := make([]byte, miB)
	if _, err := d.ReadAt(buf, 17*miB); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf, bytes.Repeat([]byte{0xa5}, miB)) {
		t.Errorf("block 17 (only in the log) does not read as 0xa5")
	}
	if _, err := d.WriteAt(buf[:512], 0); !errorsIs(err, vdisk.ErrReadOnly) {
		t.Errorf("write to read-only disk: %v", err)
	}
	d.Close()
	if after := fileSHA256(t, path); after != before {
		t.Errorf("read-only open changed the file")
	}
}

// TestDirtyLogReadWrite: a writable open replays the log; afterwards the
// file is clean for us and for qemu-img check.
func TestDirtyLogReadWrite(t *testing.T) {
	path := testutil.Corpus(t, "iotest-dirtylog-10G-4M.vhdx.bz2")
	d, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := detail(d.Info(), "log_state"); s != "replayed" {
		t.Errorf("log_state %q", s)
	}
	assertDirtyLogContent(t, d)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d, err = Open(path, &vdisk.OpenOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if s := detail(d.Info(), "log_state"); s != "clean" {
		t.Errorf("after replay: log_state %q", s)
	}
	assertDirtyLogContent(t, d)
	d.Close()
	checkFindings(t, path)
	out := testutil.Run(t, "qemu-img", "check", "-f", "vhdx", path)
	t.Logf("qemu-img check: %s", bytes.TrimSpace(out))
}

// assertDirtyLogContent checks the replayed content of the dirty-log
// image without hashing 10 GiB: MANIFEST.md says [0, 18 MiB) is 0xa5 and
// the rest zero (TestCorpus checks the full sha256 once), so only those
// 18 MiB may be mapped as data, and they must hold 0xa5.
func assertDirtyLogContent(t *testing.T, d *Disk) {
	t.Helper()
	exts, err := d.Map(0, d.Size())
	if err != nil {
		t.Fatal(err)
	}
	var data int64
	for _, e := range exts {
		if e.State == vdisk.Data {
			if e.End() > 18*miB {
				t.Errorf("data extent %+v beyond 18 MiB", e)
			}
			data += e.Length
		}
	}
	if data != 18*miB {
		t.Errorf("%d data bytes mapped, want 18 MiB", data)
	}
	buf := make([]byte, 18*miB)
	if _, err := d.ReadAt(buf, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf, bytes.Repeat([]byte{0xa5}, len(buf))) {
		t.Errorf("[0, 18 MiB) is not all 0xa5")
	}
}

// detail returns a Details value as text.
func detail(info vdisk.Info, key string) string {
	for _, f := range info.Details {
		if f.Key == key {
			if s, ok := f.Value.(string); ok {
				return s
			}
		}
	}
	return ""
}

var _ io.ReaderAt = (*Disk)(nil)
