package vhdx

import (
	"bytes"
	"errors"
	"flag"
	"hash/crc32"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/vhdkit/vhd/internal/testutil"
	"github.com/vhdkit/vhd/internal/vdisk"
)

var updateLogSeed = flag.Bool("update-log-seed", false,
	"rewrite testdata/fuzz/FuzzLog/seed-two-entries from encodeLogEntry")

// logFuzzRing turns a fuzz input into a log region: at most 1 MiB, padded
// with zeros to a non-zero multiple of 4 KiB (so seeds can drop trailing
// zeros).
func logFuzzRing(data []byte) []byte {
	data = data[:min(len(data), 1<<20)]
	n := max(logSectorSize, (len(data)+logSectorSize-1)&^(logSectorSize-1))
	ring := make([]byte, n)
	copy(ring, data)
	return ring
}

// logFuzzSeed is a 12 KiB ring holding a two-entry sequence: a zero
// descriptor at 0, then a data update and a zero range at 4 KiB whose
// Tail is 0. Its LogGuid is logTestGUID.
func logFuzzSeed(t testing.TB) []byte {
	page := make([]byte, logSectorSize)
	copy(page, "leading!")
	copy(page[100:], "middle of the page")
	copy(page[4092:], "tail")
	e1, err := encodeLogEntry([]logUpdate{{Offset: 1 << 20, ZeroLength: 8192}},
		1, 0, logTestGUID, 4<<20, 4<<20)
	if err != nil {
		t.Fatal(err)
	}
	e2, err := encodeLogEntry([]logUpdate{
		{Offset: 2 << 20, Data: page},
		{Offset: 3 << 20, ZeroLength: 4096},
	}, 2, 0, logTestGUID, 4<<20, 5<<20)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.TrimRight(append(e1, e2...), "\x00")
}

// TestLogFuzzSeed keeps the committed seed in step with the encoder and
// checks that it replays both entries.
func TestLogFuzzSeed(t *testing.T) {
	seed := logFuzzSeed(t)
	path := filepath.Join("testdata", "fuzz", "FuzzLog", "seed-two-entries")
	text := "go test fuzz v1\n[]byte(" + strconv.Quote(string(seed)) + ")\n"
	if *updateLogSeed {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != text {
		t.Fatalf("%s is stale; run go test -run TestLogFuzzSeed -update-log-seed", path)
	}
	ring := logFuzzRing(seed)
	seq, err := readLog(bytes.NewReader(ring), 0, uint32(len(ring)), logTestGUID, 1<<40)
	if err != nil {
		t.Fatal(err)
	}
	if seq.HeadSequence != 2 || len(seq.Updates) != 3 || seq.LastFileOffset != 5<<20 {
		t.Fatalf("seed replays head %d with %d updates, last %d",
			seq.HeadSequence, len(seq.Updates), seq.LastFileOffset)
	}
}

// FuzzLog feeds arbitrary bytes to readLog as a log region, once with a
// fixed LogGuid and once with the GUID found where the first entry's
// LogGuid would be. Properties: no panic; only corruption errors (the
// region is all in memory); what it returns is well formed, bounded by
// the region, and survives re-encoding as one entry.
func FuzzLog(f *testing.F) {
	f.Add(logFuzzSeed(f))
	f.Add([]byte("loge"))
	// The real dirty log's region, when the corpus is available; a
	// missing corpus only drops this seed.
	dir := os.Getenv("VHD_CORPUS")
	if dir == "" {
		dir = filepath.Join(testutil.RepoRoot(), "..", "shared", "corpus")
	}
	const dirty = "iotest-dirtylog-10G-4M.vhdx.bz2"
	if _, err := os.Stat(filepath.Join(dir, dirty)); err == nil {
		file, err := os.ReadFile(testutil.Corpus(f, dirty))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(file[1<<20 : 1<<20+64<<10]) // its seven entries
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		ring := logFuzzRing(data)
		guids := [][16]byte{logTestGUID}
		if len(data) >= 48 {
			guids = append(guids, [16]byte(data[32:48]))
		}
		// Random mutations rarely keep a CRC right, so also run on a
		// copy whose entry checksums are fixed, to reach the checks
		// behind the CRC.
		fixed := logFuzzFixCRCs(bytes.Clone(ring))
		for _, guid := range guids {
			logFuzzCheck(t, ring, guid)
			logFuzzCheck(t, fixed, guid)
		}
		if e, err := decodeLogEntry(ring, uint32(len(ring))); err == nil {
			logFuzzReencode(t, e.Updates, len(ring))
		}
	})
}

// logFuzzFixCRCs recomputes the checksum of every sector of ring that
// starts with "loge" and has a usable EntryLength, wrapping at the end.
func logFuzzFixCRCs(ring []byte) []byte {
	L := len(ring)
	for p := 0; p < L; p += logSectorSize {
		if string(ring[p:p+4]) != logEntrySignature {
			continue
		}
		n := int(logLE.Uint32(ring[p+8:]))
		if n == 0 || n%logSectorSize != 0 || n > L {
			continue
		}
		entry := append(bytes.Clone(ring[p:min(L, p+n)]), ring[:max(0, p+n-L)]...)
		logLE.PutUint32(entry[4:], 0)
		logLE.PutUint32(ring[p+4:], crc32.Checksum(entry, logCRCTable))
	}
	return ring
}

func logFuzzCheck(t *testing.T, ring []byte, guid [16]byte) {
	L := len(ring)
	// A large file size, so FlushedFileOffset does not end most runs.
	seq, err := readLog(bytes.NewReader(ring), 0, uint32(L), guid, 1<<40)
	if err != nil {
		if !errors.Is(err, vdisk.ErrCorrupt) {
			t.Fatalf("non-corruption error on an in-memory log: %v", err)
		}
		return
	}
	if seq.HeadSequence == 0 {
		t.Fatal("head sequence 0")
	}
	logFuzzReencode(t, seq.Updates, L)
}

// logFuzzReencode checks decoded updates and that they round-trip
// through one entry in a log as large as the one they came from.
func logFuzzReencode(t *testing.T, ups []logUpdate, L int) {
	dataBytes := 0
	for i, u := range ups {
		if err := checkLogUpdate(u); err != nil {
			t.Fatalf("decoded update %d is not encodable: %v", i, err)
		}
		dataBytes += len(u.Data)
	}
	if dataBytes > L {
		t.Fatalf("%d data bytes from a %d-byte log", dataBytes, L)
	}
	f := &logMemFile{}
	lw := newLogWriter(f, 0, uint32(L), logTestGUID)
	if err := lw.append(ups, 0, 0); err != nil {
		t.Fatalf("re-encoding %d updates: %v", len(ups), err)
	}
	f.b = append(f.b, make([]byte, L-len(f.b))...)
	again, err := readLog(bytes.NewReader(f.b), 0, uint32(L), logTestGUID, 1<<40)
	if err != nil {
		t.Fatalf("re-encoded entry: %v", err)
	}
	if len(again.Updates) != len(ups) {
		t.Fatalf("re-encoded %d updates, read %d", len(ups), len(again.Updates))
	}
	for i := range ups {
		a, b := ups[i], again.Updates[i]
		if a.Offset != b.Offset || a.ZeroLength != b.ZeroLength || !bytes.Equal(a.Data, b.Data) {
			t.Fatalf("update %d changed in the round trip", i)
		}
	}
}

// logMemFile is a minimal growable io.WriterAt.
type logMemFile struct{ b []byte }

func (m *logMemFile) WriteAt(p []byte, off int64) (int, error) {
	if end := int(off) + len(p); end > len(m.b) {
		m.b = append(m.b, make([]byte, end-len(m.b))...)
	}
	return copy(m.b[off:], p), nil
}
