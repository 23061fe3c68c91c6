package vhdx

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"

	"github.com/vhdkit/vhd/internal/testfile"
	"github.com/vhdkit/vhd/internal/testutil"
	"github.com/vhdkit/vhd/internal/vdisk"
)

var (
	logTestGUID  = [16]byte{0x11, 0x22, 0x33, 0x44, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	logOtherGUID = [16]byte{0xAA, 0xBB, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}
)

// logPage returns a 4 KiB update whose bytes all differ from their
// neighbours' so a misplaced LeadingBytes/TrailingBytes copy shows.
func logPage(seed byte) []byte {
	b := make([]byte, logSectorSize)
	for i := range b {
		b[i] = seed + byte(i*7) + byte(i>>8)
	}
	return b
}

func logSameUpdates(t *testing.T, got, want []logUpdate) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d updates, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Offset != w.Offset || g.ZeroLength != w.ZeroLength ||
			(g.Data == nil) != (w.Data == nil) || !bytes.Equal(g.Data, w.Data) {
			t.Fatalf("update %d: got {%#x, %d data bytes, zero %d}, want {%#x, %d data bytes, zero %d}",
				i, g.Offset, len(g.Data), g.ZeroLength, w.Offset, len(w.Data), w.ZeroLength)
		}
	}
}

// TestLogAppendReadLog appends entries to a small ring until they wrap
// around its end, and checks after each append that readLog returns
// exactly that entry (each entry is its own sequence).
func TestLogAppendReadLog(t *testing.T) {
	const logOff, logLen = 1 << 20, 64 << 10
	f := testfile.NewMem()
	if err := f.Truncate(4 << 20); err != nil {
		t.Fatal(err)
	}
	lw := newLogWriter(f, logOff, logLen, logTestGUID)
	wrapped := false
	for i := 1; i <= 40; i++ {
		// 1 descriptor sector + 2 data sectors = 12 KiB per entry, so
		// entry 6 starts at 60 KiB and wraps over the ring end.
		ups := []logUpdate{
			{Offset: 2<<20 + int64(i)*logSectorSize, Data: logPage(byte(i))},
			{Offset: 3 << 20, ZeroLength: int64(i) * logSectorSize},
			{Offset: 2 << 20, Data: logPage(byte(100 + i))},
		}
		at := lw.next
		if err := lw.append(ups, 4<<20, 5<<20+uint64(i)<<20); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		if lw.next < at {
			wrapped = wrapped || lw.next != 0
		}
		seq, err := readLog(f, logOff, logLen, logTestGUID, 4<<20)
		if err != nil {
			t.Fatalf("readLog after entry %d (at %d): %v", i, at, err)
		}
		if seq.HeadSequence != uint64(i) || seq.FlushedFileOffset != 4<<20 ||
			seq.LastFileOffset != 5<<20+uint64(i)<<20 {
			t.Fatalf("entry %d: got head %d flushed %d last %d", i,
				seq.HeadSequence, seq.FlushedFileOffset, seq.LastFileOffset)
		}
		logSameUpdates(t, seq.Updates, ups)
	}
	if !wrapped {
		t.Fatal("no entry wrapped around the end of the ring")
	}
	// The log never wrote outside its region.
	b := f.Bytes()
	if !bytes.Equal(b[:logOff], make([]byte, logOff)) ||
		!bytes.Equal(b[logOff+logLen:], make([]byte, len(b)-logOff-logLen)) {
		t.Fatal("log writer wrote outside the log region")
	}
}

// TestLogManyDescriptors needs a second and third descriptor sector:
// the first holds 126 descriptors, later ones 128.
func TestLogManyDescriptors(t *testing.T) {
	for _, n := range []int{125, 126, 127, 254, 255, 300} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			var ups []logUpdate
			nData := 0
			for i := range n {
				off := int64(i) * 2 * logSectorSize
				if i%3 == 0 {
					ups = append(ups, logUpdate{Offset: off, ZeroLength: logSectorSize})
					continue
				}
				ups = append(ups, logUpdate{Offset: off, Data: logPage(byte(i))})
				nData++
			}
			b, err := encodeLogEntry(ups, 7, 0, logTestGUID, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			descSectors := (n + 2 + 127) / 128
			if want := (descSectors + nData) * logSectorSize; len(b) != want {
				t.Fatalf("entry is %d bytes, want %d", len(b), want)
			}
			e, err := decodeLogEntry(b, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			if e.EntryLength != uint32(len(b)) || e.DescriptorCount != uint32(n) {
				t.Fatalf("EntryLength %d DescriptorCount %d", e.EntryLength, e.DescriptorCount)
			}
			logSameUpdates(t, e.Updates, ups)

			// And through readLog on a 1 MiB log whose entry wraps.
			ring := make([]byte, 1<<20)
			at := len(ring) - 2*logSectorSize
			b, err = encodeLogEntry(ups, 7, uint32(at), logTestGUID, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			logPut(ring, at, b)
			seq, err := readLog(bytes.NewReader(ring), 0, uint32(len(ring)), logTestGUID, int64(len(ring)))
			if err != nil {
				t.Fatal(err)
			}
			logSameUpdates(t, seq.Updates, ups)
		})
	}
}

// logPut copies entry b into ring at offset at, wrapping at the end.
func logPut(ring []byte, at int, b []byte) {
	n := copy(ring[at:], b)
	copy(ring, b[n:])
}

// logEntryBytes encodes one test entry that zeroes one range and writes
// one page derived from seq.
func logEntryBytes(t *testing.T, seq uint64, tail uint32, guid [16]byte) []byte {
	t.Helper()
	b, err := encodeLogEntry([]logUpdate{
		{Offset: 1 << 20, ZeroLength: 2 * logSectorSize},
		{Offset: int64(seq) * logSectorSize, Data: logPage(byte(seq))},
	}, seq, tail, guid, 1<<20, 2<<20)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// logResum recomputes an entry's checksum after a test edits it.
func logResum(b []byte) {
	binary.LittleEndian.PutUint32(b[4:], 0)
	binary.LittleEndian.PutUint32(b[4:], crc32.Checksum(b, logCRCTable))
}

// TestReadLogActiveSequence builds rings by hand and checks which entries
// readLog replays (FORMATS.md 3.5.3).
func TestReadLogActiveSequence(t *testing.T) {
	const L = 256 << 10
	type placed struct {
		at, seq, tail int
		guid          [16]byte
		edit          func([]byte) // damages the entry after encoding
	}
	good := logTestGUID
	torn := func(b []byte) { b[2*logSectorSize-1] ^= 1; logResum(b) } // SequenceLow
	badCRC := func(b []byte) { b[100] ^= 0x40 }
	tests := []struct {
		name    string
		entries []placed
		want    []int // sequence numbers replayed, tail to head
	}{
		{"single", []placed{{at: 0, seq: 1, tail: 0, guid: good}}, []int{1}},
		{"newest wins", []placed{
			{at: 0, seq: 5, tail: 0, guid: good},
			{at: 64 << 10, seq: 9, tail: 64 << 10, guid: good},
			{at: 128 << 10, seq: 7, tail: 128 << 10, guid: good},
		}, []int{9}},
		{"multi-entry sequence", []placed{
			{at: 0, seq: 3, tail: 0, guid: good},
			{at: 8 << 10, seq: 4, tail: 0, guid: good},
			{at: 16 << 10, seq: 5, tail: 0, guid: good},
		}, []int{3, 4, 5}},
		{"tail in the middle", []placed{
			{at: 0, seq: 3, tail: 0, guid: good},
			{at: 8 << 10, seq: 4, tail: 8 << 10, guid: good},
			{at: 16 << 10, seq: 5, tail: 8 << 10, guid: good},
		}, []int{4, 5}},
		{"sequence across the ring end", []placed{
			{at: L - 12<<10, seq: 20, tail: L - 12<<10, guid: good},
			{at: L - 4<<10, seq: 21, tail: L - 12<<10, guid: good}, // wraps
			{at: 4 << 10, seq: 22, tail: L - 12<<10, guid: good},
		}, []int{20, 21, 22}},
		{"head's tail not in sequence", []placed{
			{at: 0, seq: 2, tail: 0, guid: good},
			{at: 64 << 10, seq: 8, tail: 32 << 10, guid: good},
		}, []int{2}},
		{"stale GUID ignored", []placed{
			{at: 0, seq: 2, tail: 0, guid: good},
			{at: 64 << 10, seq: 8, tail: 64 << 10, guid: logOtherGUID},
		}, []int{2}},
		{"bad CRC ignored", []placed{
			{at: 0, seq: 2, tail: 0, guid: good},
			{at: 64 << 10, seq: 8, tail: 64 << 10, guid: good, edit: badCRC},
		}, []int{2}},
		{"torn data sector ignored", []placed{
			{at: 0, seq: 2, tail: 0, guid: good},
			{at: 64 << 10, seq: 8, tail: 64 << 10, guid: good, edit: torn},
		}, []int{2}},
		{"torn entry ends the sequence", []placed{
			{at: 0, seq: 3, tail: 0, guid: good},
			{at: 8 << 10, seq: 4, tail: 0, guid: good},
			{at: 16 << 10, seq: 5, tail: 0, guid: good, edit: torn},
		}, []int{3, 4}},
		{"gap ends the sequence", []placed{
			{at: 0, seq: 3, tail: 0, guid: good},
			{at: 8 << 10, seq: 5, tail: 0, guid: good},
		}, []int{3}},
		{"no valid entry", []placed{
			{at: 0, seq: 2, tail: 0, guid: logOtherGUID},
			{at: 64 << 10, seq: 8, tail: 64 << 10, guid: good, edit: badCRC},
			{at: 128 << 10, seq: 9, tail: 128 << 10, guid: good, edit: torn},
		}, nil},
		{"empty log", nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ring := make([]byte, L)
			for _, p := range tc.entries {
				b := logEntryBytes(t, uint64(p.seq), uint32(p.tail), p.guid)
				if p.edit != nil {
					p.edit(b)
				}
				logPut(ring, p.at, b)
			}
			// Put the ring at 1 MiB of a 3 MiB file.
			file := make([]byte, 3<<20)
			copy(file[1<<20:], ring)
			seq, err := readLog(bytes.NewReader(file), 1<<20, L, good, int64(len(file)))
			if tc.want == nil {
				if !errors.Is(err, vdisk.ErrCorrupt) {
					t.Fatalf("got %v, want ErrCorrupt", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var want []logUpdate
			for _, s := range tc.want {
				e, err := decodeLogEntry(logEntryBytes(t, uint64(s), 0, good), L)
				if err != nil {
					t.Fatal(err)
				}
				want = append(want, e.Updates...)
			}
			logSameUpdates(t, seq.Updates, want)
			if seq.HeadSequence != uint64(tc.want[len(tc.want)-1]) {
				t.Fatalf("head sequence %d, want %d", seq.HeadSequence, tc.want[len(tc.want)-1])
			}
		})
	}
}

func TestReadLogFileErrors(t *testing.T) {
	// One valid entry whose FlushedFileOffset is 3 MiB, in a log at
	// 1 MiB of a 2 MiB file.
	b, err := encodeLogEntry([]logUpdate{{Offset: 0, ZeroLength: 4096}},
		1, 0, logTestGUID, 3<<20, 3<<20)
	if err != nil {
		t.Fatal(err)
	}
	file := make([]byte, 2<<20)
	copy(file[1<<20:], b)
	r := bytes.NewReader(file)
	if _, err := readLog(r, 1<<20, 1<<20, logTestGUID, 3<<20); err != nil {
		t.Fatalf("file size 3 MiB: %v", err)
	}
	tests := []struct {
		name     string
		off      int64
		length   uint32
		fileSize int64
	}{
		{"file truncated below FlushedFileOffset", 1 << 20, 1 << 20, 3<<20 - 1},
		{"log past end of file", 1 << 20, 1 << 20, 2<<20 - 4096},
		{"log offset overflows", 1<<63 - 4096, 1 << 20, 1<<63 - 1},
		{"negative log offset", -4096, 1 << 20, 2 << 20},
		{"zero log length", 1 << 20, 0, 2 << 20},
		{"unaligned log length", 1 << 20, 1<<20 - 512, 2 << 20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readLog(r, tc.off, tc.length, logTestGUID, tc.fileSize)
			var ce *vdisk.CorruptError
			if !errors.Is(err, vdisk.ErrCorrupt) || !errors.As(err, &ce) {
				t.Fatalf("got %v, want a *vdisk.CorruptError", err)
			}
		})
	}
}

// TestReadLogIOError checks that an I/O failure is reported as such, not
// as a corrupt or empty log.
func TestReadLogIOError(t *testing.T) {
	ring := make([]byte, 1<<20)
	logPut(ring, 0, logEntryBytes(t, 1, 0, logTestGUID))
	boom := errors.New("disk on fire")
	r := logFailingReader{bytes.NewReader(ring), 4096, boom}
	_, err := readLog(r, 0, 1<<20, logTestGUID, 1<<20)
	if !errors.Is(err, boom) || errors.Is(err, vdisk.ErrCorrupt) {
		t.Fatalf("got %v, want the I/O error", err)
	}
}

type logFailingReader struct {
	r    *bytes.Reader
	from int64
	err  error
}

func (f logFailingReader) ReadAt(b []byte, off int64) (int, error) {
	if off+int64(len(b)) > f.from {
		return 0, f.err
	}
	return f.r.ReadAt(b, off)
}

// TestDecodeLogEntryRules breaks one rule of FORMATS.md 3.5.3 at a time,
// fixing the checksum afterwards so the rule itself must catch it.
func TestDecodeLogEntryRules(t *testing.T) {
	ups := []logUpdate{
		{Offset: 8 << 20, Data: logPage(1)},
		{Offset: 9 << 20, ZeroLength: 1 << 20},
	}
	base, err := encodeLogEntry(ups, 0x1_0000_0002, 0, logTestGUID, 1<<20, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := decodeLogEntry(base, 1<<20); err != nil {
		t.Fatalf("unmodified entry: %v", err)
	}
	le32 := binary.LittleEndian.PutUint32
	le64 := binary.LittleEndian.PutUint64
	d0, d1 := logEntryHeaderSize, logEntryHeaderSize+logDescriptorSize
	data := logSectorSize
	tests := []struct {
		name   string
		edit   func(b []byte)
		resum  bool
		logLen uint32
	}{
		{"signature", func(b []byte) { b[0] = 'L' }, true, 0},
		{"checksum", func(b []byte) { b[4] ^= 1 }, false, 0},
		{"payload bit flip", func(b []byte) { b[data+100] ^= 1 }, false, 0},
		{"zero entry length", func(b []byte) { le32(b[8:], 0) }, true, 0},
		{"unaligned entry length", func(b []byte) { le32(b[8:], 8192+512) }, true, 0},
		{"entry longer than log", nil, true, 4096},
		{"entry longer than bytes", func(b []byte) { le32(b[8:], 12288) }, true, 0},
		{"zero sequence", func(b []byte) { le64(b[16:], 0) }, true, 0},
		{"unaligned tail", func(b []byte) { le32(b[12:], 2048) }, true, 0},
		{"descriptor count too big", func(b []byte) { le32(b[24:], 127) }, true, 0},
		{"descriptor count huge", func(b []byte) { le32(b[24:], 0xFFFFFFFF) }, true, 0},
		{"data sector does not fit", func(b []byte) {
			copy(b[d1:], "desc") // second descriptor now needs a data sector
		}, true, 0},
		{"unknown descriptor", func(b []byte) { copy(b[d0:], "dexc") }, true, 0},
		{"descriptor sequence", func(b []byte) { b[d0+24]++ }, true, 0},
		{"zero descriptor sequence", func(b []byte) { b[d1+31]++ }, true, 0},
		{"unaligned data offset", func(b []byte) { le64(b[d0+16:], 8<<20+512) }, true, 0},
		{"unaligned zero offset", func(b []byte) { le64(b[d1+16:], 9<<20+8) }, true, 0},
		{"unaligned zero length", func(b []byte) { le64(b[d1+8:], 4095) }, true, 0},
		{"offset past int64", func(b []byte) { le64(b[d1+16:], 1<<63) }, true, 0},
		{"range past int64", func(b []byte) { le64(b[d1+8:], 1<<63-4096) }, true, 0},
		{"data signature", func(b []byte) { copy(b[data:], "date") }, true, 0},
		{"sequence high", func(b []byte) { b[data+4]++ }, true, 0},
		{"sequence low", func(b []byte) { b[data+4092]++ }, true, 0},
		{"short buffer", func(b []byte) {}, true, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := bytes.Clone(base)
			if tc.edit != nil {
				tc.edit(b)
			}
			if tc.resum {
				logResum(b)
			}
			if tc.name == "short buffer" {
				b = b[:len(b)-1]
			}
			logLen := uint32(1 << 20)
			if tc.logLen != 0 {
				logLen = tc.logLen
			}
			_, err := decodeLogEntry(b, logLen)
			var ce *vdisk.CorruptError
			if !errors.As(err, &ce) || !errors.Is(err, vdisk.ErrCorrupt) {
				t.Fatalf("got %v, want a *vdisk.CorruptError", err)
			}
		})
	}

	// Padding after the data sectors is allowed ("fit in EntryLength")
	// and covered by the checksum.
	padded := append(bytes.Clone(base), logPage(9)...)
	le32(padded[8:], uint32(len(padded)))
	logResum(padded)
	e, err := decodeLogEntry(padded, 1<<20)
	if err != nil {
		t.Fatalf("padded entry: %v", err)
	}
	logSameUpdates(t, e.Updates, ups)
	padded[len(padded)-1] ^= 1
	if _, err := decodeLogEntry(padded, 1<<20); !errors.Is(err, vdisk.ErrCorrupt) {
		t.Fatalf("padding not covered by the checksum: %v", err)
	}
}

func TestLogAppendInvalid(t *testing.T) {
	page := logPage(0)
	tests := []struct {
		name   string
		ups    []logUpdate
		logLen uint32
		guid   [16]byte
	}{
		{"unaligned data offset", []logUpdate{{Offset: 512, Data: page}}, 1 << 20, logTestGUID},
		{"short data", []logUpdate{{Offset: 0, Data: page[:4095]}}, 1 << 20, logTestGUID},
		{"data and zero length", []logUpdate{{Offset: 0, Data: page, ZeroLength: 4096}}, 1 << 20, logTestGUID},
		{"negative offset", []logUpdate{{Offset: -4096, ZeroLength: 4096}}, 1 << 20, logTestGUID},
		{"unaligned zero length", []logUpdate{{Offset: 0, ZeroLength: 100}}, 1 << 20, logTestGUID},
		{"zero range past int64", []logUpdate{{Offset: 1 << 62, ZeroLength: 1<<63 - 4096}}, 1 << 20, logTestGUID},
		{"entry larger than log", []logUpdate{{Offset: 0, Data: page}}, 4096, logTestGUID},
		{"zero GUID", []logUpdate{{Offset: 0, Data: page}}, 1 << 20, [16]byte{}},
		{"zero-length log", []logUpdate{{Offset: 0, Data: page}}, 0, logTestGUID},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := testfile.NewMem()
			lw := newLogWriter(f, 1<<20, tc.logLen, tc.guid)
			err := lw.append(tc.ups, 0, 0)
			if !errors.Is(err, vdisk.ErrInvalidArgument) {
				t.Fatalf("got %v, want ErrInvalidArgument", err)
			}
			if lw.seq != 0 || lw.next != 0 {
				t.Fatalf("failed append moved the writer to seq %d next %d", lw.seq, lw.next)
			}
			if size, _ := f.Size(); size != 0 {
				t.Fatalf("failed append wrote %d bytes", size)
			}
		})
	}

	// An entry exactly the size of the log fits; the next one would
	// overwrite it and is refused, so a torn write cannot leave the log
	// without a valid entry.
	f := testfile.NewMem()
	lw := newLogWriter(f, 0, 3*logSectorSize, logTestGUID)
	two := []logUpdate{{Offset: 0, Data: page}, {Offset: 4096, Data: logPage(1)}}
	if err := lw.append(two, 0, 0); err != nil {
		t.Fatal(err)
	}
	before := bytes.Clone(f.Bytes())
	if err := lw.append(two[:1], 0, 0); !errors.Is(err, vdisk.ErrInvalidArgument) {
		t.Fatalf("entry overlapping the previous one: got %v", err)
	}
	if !bytes.Equal(f.Bytes(), before) || lw.seq != 1 {
		t.Fatal("refused append changed the log")
	}
	if seq, err := readLog(f, 0, 3*logSectorSize, logTestGUID, 3*logSectorSize); err != nil || seq.HeadSequence != 1 {
		t.Fatalf("full-log entry: %v %+v", err, seq)
	}
}

// TestLogMaxDataUpdates appends entries of the largest size
// logMaxDataUpdates allows, one after another, and checks that one more
// data update would not fit in half the log.
func TestLogMaxDataUpdates(t *testing.T) {
	for _, L := range []uint32{8 << 10, 12 << 10, 1 << 20, 3 << 20, 64 << 20} {
		n := logMaxDataUpdates(L)
		sectors := func(n int) uint32 {
			return uint32(n) + uint32(logDescSectors(uint32(n)))
		}
		if sectors(n)*logSectorSize > L/2 || sectors(n+1)*logSectorSize <= L/2 {
			t.Fatalf("log %d: %d data updates (%d sectors) is not the largest fitting half",
				L, n, sectors(n))
		}
		if n == 0 {
			continue
		}
		ups := make([]logUpdate, n)
		for i := range ups {
			ups[i] = logUpdate{Offset: int64(i) * logSectorSize, Data: logPage(byte(i))}
		}
		lw := newLogWriter(&logMemFile{}, 0, L, logTestGUID)
		for i := range 5 {
			if err := lw.append(ups, 0, 0); err != nil {
				t.Fatalf("log %d, entry %d of %d updates: %v", L, i, n, err)
			}
		}
	}
	if n := logMaxDataUpdates(4 << 10); n != 0 {
		t.Fatalf("4 KiB log allows %d updates", n)
	}
}

// TestLogAppendTornWrite cuts every append's write short, as a crash
// would, and checks that replay then still finds the previous entry.
func TestLogAppendTornWrite(t *testing.T) {
	const L = 16 * logSectorSize
	f := testfile.FromBytes(make([]byte, L))
	lw := newLogWriter(f, 0, L, logTestGUID)
	for i := 1; i <= 12; i++ {
		// Entries of 3 and 10 sectors in turn, so they wrap at
		// varying places of the 16-sector ring.
		ups := []logUpdate{{Offset: 2 << 30, ZeroLength: 1 << 20}}
		for k := range 2 + 7*(i%2) {
			ups = append(ups, logUpdate{Offset: int64(k) << 20, Data: logPage(byte(i + k))})
		}
		// Crash during the write: only the first sector of the entry
		// (or of each part, when it wraps) reaches the disk.
		crash := testfile.FromBytes(bytes.Clone(f.Bytes()))
		torn := *lw
		torn.w = logTornWriter{crash}
		if err := torn.append(ups, 0, 0); err != nil {
			t.Fatal(err)
		}
		if i > 1 {
			seq, err := readLog(crash, 0, L, logTestGUID, L)
			if err != nil || seq.HeadSequence != uint64(i-1) {
				t.Fatalf("after torn entry %d: %v %+v", i, err, seq)
			}
		}
		if err := lw.append(ups, 0, 0); err != nil {
			t.Fatal(err)
		}
	}
}

// logTornWriter writes only the first 4 KiB of every write.
type logTornWriter struct{ f *testfile.Mem }

func (w logTornWriter) WriteAt(p []byte, off int64) (int, error) {
	return w.f.WriteAt(p[:min(len(p), logSectorSize)], off)
}

// logTestHeader is the part of a VHDX header (FORMATS.md 3.3) the log
// tests need, read from the current header.
type logTestHeader struct {
	slot      int64 // 64 KiB or 128 KiB
	seq       uint64
	logGUID   [16]byte
	logLength uint32
	logOffset int64
}

// logTestHeaders returns the valid headers of file, current first.
func logTestHeaders(t *testing.T, file []byte) []logTestHeader {
	t.Helper()
	var hs []logTestHeader
	for _, slot := range []int64{64 << 10, 128 << 10} {
		b := file[slot : slot+4096]
		c := binary.LittleEndian.Uint32(b[4:])
		tmp := bytes.Clone(b)
		binary.LittleEndian.PutUint32(tmp[4:], 0)
		if string(b[:4]) != "head" || crc32.Checksum(tmp, logCRCTable) != c {
			continue
		}
		h := logTestHeader{slot: slot, seq: binary.LittleEndian.Uint64(b[8:]),
			logLength: binary.LittleEndian.Uint32(b[68:]),
			logOffset: int64(binary.LittleEndian.Uint64(b[72:]))}
		copy(h.logGUID[:], b[48:64])
		hs = append(hs, h)
	}
	if len(hs) == 0 {
		t.Fatal("no valid VHDX header")
	}
	if len(hs) == 2 && hs[1].seq > hs[0].seq {
		hs[0], hs[1] = hs[1], hs[0]
	}
	return hs
}

// logTestSetGUID writes guid into both headers' LogGuid and fixes their
// checksums.
func logTestSetGUID(file []byte, guid [16]byte) {
	for _, slot := range []int{64 << 10, 128 << 10} {
		b := file[slot : slot+4096]
		copy(b[48:64], guid[:])
		logResum(b)
	}
}

// logTestBATOffset returns the BAT region from region table 1
// (FORMATS.md 3.4).
func logTestBATOffset(t *testing.T, file []byte) (off int64, length uint32) {
	t.Helper()
	rt := file[192<<10:]
	batGUID := []byte{0x66, 0x77, 0xC2, 0x2D, 0x23, 0xF6, 0x00, 0x42,
		0x9D, 0x64, 0x11, 0x5E, 0x9B, 0xFD, 0x4A, 0x08}
	n := binary.LittleEndian.Uint32(rt[8:])
	for i := range min(n, 2047) {
		e := rt[16+32*i:][:32]
		if bytes.Equal(e[:16], batGUID) {
			return int64(binary.LittleEndian.Uint64(e[16:])), binary.LittleEndian.Uint32(e[24:])
		}
	}
	t.Fatal("no BAT region")
	return 0, 0
}

// TestReadLogCorpusDirtyLog replays the log that qemu 1.6 left in
// iotest-dirtylog: it adds the missing 18th 1 MiB block to the BAT.
func TestReadLogCorpusDirtyLog(t *testing.T) {
	path := testutil.Corpus(t, "iotest-dirtylog-10G-4M.vhdx.bz2")
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h := logTestHeaders(t, file)[0]
	if h.logGUID == ([16]byte{}) || h.logOffset != 1<<20 || h.logLength != 1<<20 {
		t.Fatalf("unexpected header %+v", h)
	}
	batOff, _ := logTestBATOffset(t, file)
	if batOff != 2<<20 {
		t.Fatalf("BAT at %#x, MANIFEST says 2 MiB", batOff)
	}
	seq, err := readLog(bytes.NewReader(file), h.logOffset, h.logLength, h.logGUID, int64(len(file)))
	if err != nil {
		t.Fatal(err)
	}
	// Seven entries lie in the ring (sequence 1 to 7, one per block
	// allocation, each with its own LogGuid); only the last carries the
	// header's GUID.
	if seq.HeadSequence != 7 || len(seq.Updates) != 1 ||
		seq.FlushedFileOffset != 30<<20 || seq.LastFileOffset != 30<<20 {
		t.Fatalf("got head %d, %d updates, flushed %d, last %d", seq.HeadSequence,
			len(seq.Updates), seq.FlushedFileOffset, seq.LastFileOffset)
	}
	u := seq.Updates[0]
	if u.Offset != batOff || len(u.Data) != logSectorSize {
		t.Fatalf("update at %#x with %d bytes, want the first BAT sector", u.Offset, len(u.Data))
	}

	// 1 MiB blocks with 512-byte sectors: chunk ratio 4096, so payload
	// block 17 is BAT entry 17. On disk it is NOT_PRESENT; the log makes
	// it FULLY_PRESENT at 29 MiB, the last MiB of the 30 MiB file. No
	// other entry of the sector changes.
	bat := file[batOff : batOff+logSectorSize]
	entry := func(b []byte, i int) uint64 { return binary.LittleEndian.Uint64(b[8*i:]) }
	if got := entry(bat, 17); got != 0 {
		t.Fatalf("on-disk BAT entry 17 = %#x, want 0", got)
	}
	if got := entry(u.Data, 17); got&7 != 6 || got&^0xFFFFF != 29<<20 {
		t.Fatalf("logged BAT entry 17 = %#x, want FULLY_PRESENT at 29 MiB", got)
	}
	for i := range 512 {
		if i != 17 && entry(bat, i) != entry(u.Data, i) {
			t.Fatalf("BAT entry %d changed: %#x -> %#x", i, entry(bat, i), entry(u.Data, i))
		}
	}
	for i := range 17 {
		if entry(u.Data, i)&7 != 6 {
			t.Fatalf("BAT entry %d = %#x, want FULLY_PRESENT", i, entry(u.Data, i))
		}
	}

	// The file cut below FlushedFileOffset: refused.
	if _, err := readLog(bytes.NewReader(file), h.logOffset, h.logLength, h.logGUID,
		int64(len(file))-1<<20); !errors.Is(err, vdisk.ErrCorrupt) {
		t.Fatalf("truncated: got %v, want ErrCorrupt", err)
	}
}

// logQemuVHDX creates a dynamic VHDX with qemu-img and returns its path.
func logQemuVHDX(t *testing.T, size string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "q.vhdx")
	testutil.Run(t, "qemu-img", "create", "-q", "-f", "vhdx", "-o", "block_size=1M", path, size)
	return path
}

// TestLogDecodeQemuEntries decodes the entries qemu-io leaves in the log
// after allocating blocks. qemu resets the header's LogGuid to zero after
// each write, so the entries are found by scanning the ring with
// decodeLogEntry, which leaves the GUID comparison to its caller.
func TestLogDecodeQemuEntries(t *testing.T) {
	path := logQemuVHDX(t, "64M")
	testutil.Run(t, "qemu-io", "-f", "vhdx",
		"-c", "write -P 0x5a 0 64k", "-c", "write -P 0x33 3M 4k",
		"-c", "write -P 0x77 40M 1M", path)
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h := logTestHeaders(t, file)[0]
	if h.logGUID != ([16]byte{}) {
		t.Fatalf("qemu left LogGuid %x set", h.logGUID)
	}
	batOff, batLen := logTestBATOffset(t, file)
	ring := file[h.logOffset : h.logOffset+int64(h.logLength)]

	var entries []*logEntry
	for p := 0; p < len(ring); p += logSectorSize {
		if string(ring[p:p+4]) != "loge" {
			continue
		}
		b := append(bytes.Clone(ring[p:]), ring[:p]...) // unwrap
		e, err := decodeLogEntry(b, h.logLength)
		if err != nil {
			t.Fatalf("qemu entry at log offset %d: %v", p, err)
		}
		if e.Tail != uint32(p) || e.LogGUID == ([16]byte{}) {
			t.Fatalf("entry at %d: Tail %d, LogGuid %x", p, e.Tail, e.LogGUID)
		}
		entries = append(entries, e)
	}
	// One entry per block allocation: three blocks.
	if len(entries) != 3 {
		t.Fatalf("found %d qemu entries, want 3", len(entries))
	}
	for i, e := range entries {
		if e.SequenceNumber != uint64(i+1) {
			t.Fatalf("entry %d has sequence %d", i, e.SequenceNumber)
		}
		for _, u := range e.Updates {
			if u.Offset < batOff || u.Offset+logSectorSize > batOff+int64(batLen) {
				t.Fatalf("qemu entry %d updates %#x, outside the BAT", i, u.Offset)
			}
		}
	}
	// The last entry's data is what the BAT holds now.
	last := entries[len(entries)-1]
	for _, u := range last.Updates {
		if u.Data == nil || !bytes.Equal(u.Data, file[u.Offset:u.Offset+logSectorSize]) {
			t.Fatalf("reconstructed update at %#x differs from the applied BAT sector", u.Offset)
		}
	}
	// Block 40 (virtual 40 MiB) is FULLY_PRESENT in that update.
	if e := binary.LittleEndian.Uint64(last.Updates[0].Data[8*40:]); e&7 != 6 {
		t.Fatalf("BAT entry 40 in qemu's last entry = %#x", e)
	}
}

// TestLogQemuReplaysOurEntry writes an entry with logWriter into a
// qemu-made VHDX, arms the header's LogGuid and lets qemu replay it. The
// entry allocates block 2 at the end of the file with a data update, a
// zero descriptor over garbage and a BAT update.
func TestLogQemuReplaysOurEntry(t *testing.T) {
	for _, tc := range []struct {
		name   string
		at     uint32 // where logWriter puts the entry
		damage bool   // flip a data byte: qemu must then ignore the entry
	}{
		{"start of ring", 0, false},
		{"wrapped over ring end", 1<<20 - logSectorSize, false},
		{"control: bad checksum", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := logQemuVHDX(t, "8M")
			file, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			h := logTestHeaders(t, file)[0]
			batOff, _ := logTestBATOffset(t, file)

			// New block at the 1 MiB-aligned end, pre-filled with
			// garbage the zero descriptor must clear.
			blk := (int64(len(file)) + 1<<20 - 1) &^ (1<<20 - 1)
			file = append(file, make([]byte, blk+1<<20-int64(len(file)))...)
			for i := blk; i < blk+1<<20; i++ {
				file[i] = 0xEE
			}
			bat := bytes.Clone(file[batOff : batOff+logSectorSize])
			binary.LittleEndian.PutUint64(bat[8*2:], uint64(blk)|6)
			page := logPage(0x42)
			ups := []logUpdate{
				{Offset: blk, Data: page},
				{Offset: blk + logSectorSize, ZeroLength: 1<<20 - logSectorSize},
				{Offset: batOff, Data: bat},
			}
			var guid [16]byte
			copy(guid[:], "our log guid 123")
			f := testfile.FromBytes(file)
			lw := newLogWriter(f, h.logOffset, h.logLength, guid)
			lw.next = tc.at
			size := uint64(len(file))
			if err := lw.append(ups, size, size); err != nil {
				t.Fatal(err)
			}
			file = f.Bytes()
			if tc.damage {
				file[h.logOffset+logSectorSize+100] ^= 1
			}
			logTestSetGUID(file, guid)
			if err := os.WriteFile(path, file, 0o644); err != nil {
				t.Fatal(err)
			}

			// A read-write open replays the log (qemu-img check -r opens
			// the image read-write).
			testutil.Run(t, "qemu-img", "check", "-q", "-r", "all", "-f", "vhdx", path)
			after, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if g := logTestHeaders(t, after)[0].logGUID; g != ([16]byte{}) && !tc.damage {
				t.Fatalf("LogGuid still %x after qemu opened the file", g)
			}
			raw := filepath.Join(t.TempDir(), "out.raw")
			testutil.Run(t, "qemu-img", "convert", "-f", "vhdx", "-O", "raw", path, raw)
			got, err := os.ReadFile(raw)
			if err != nil {
				t.Fatal(err)
			}
			// The control case shows that qemu checks what we
			// encoded: without a valid entry, block 2 stays ZERO.
			want := make([]byte, 8<<20)
			if !tc.damage {
				copy(want[2<<20:], page)
			}
			if !bytes.Equal(got, want) {
				for i := range got {
					if got[i] != want[i] {
						t.Fatalf("virtual disk differs at %#x: %#x, want %#x", i, got[i], want[i])
					}
				}
				t.Fatalf("virtual disk is %d bytes, want %d", len(got), len(want))
			}
		})
	}
}

// TestReadLogOverlappingHeaders fills a ring with entry headers that
// each claim the whole log, so every scan position would read and
// checksum the full ring: the scan must stay linear in the log size.
func TestReadLogOverlappingHeaders(t *testing.T) {
	for _, tc := range []struct {
		name     string
		entryLen uint32
	}{
		{"whole log", 1 << 20},
		{"64 KiB", 64 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const L = 1 << 20
			ring := make([]byte, L)
			for p := 0; p < L; p += logSectorSize {
				h := ring[p:]
				copy(h, "loge")
				binary.LittleEndian.PutUint32(h[4:], 1) // wrong CRC
				binary.LittleEndian.PutUint32(h[8:], tc.entryLen)
				binary.LittleEndian.PutUint32(h[12:], uint32(p))
				binary.LittleEndian.PutUint64(h[16:], uint64(p/logSectorSize+1))
				copy(h[32:48], logTestGUID[:])
			}
			r := &logCountingReader{r: bytes.NewReader(ring)}
			_, err := readLog(r, 0, L, logTestGUID, L)
			if !errors.Is(err, vdisk.ErrCorrupt) {
				t.Fatalf("got %v, want ErrCorrupt", err)
			}
			// Header sectors, plus the scan budget.
			if limit := L + logScanBudget(L); r.n > limit {
				t.Fatalf("read %d bytes from a %d-byte log", r.n, L)
			}
		})
	}
}

type logCountingReader struct {
	r *bytes.Reader
	n int64
}

func (c *logCountingReader) ReadAt(b []byte, off int64) (int, error) {
	c.n += int64(len(b))
	return c.r.ReadAt(b, off)
}
