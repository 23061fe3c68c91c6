package vhdx

import (
	"bytes"
	"errors"
	"testing"

	"github.com/vhdkit/vhd/internal/testfile"
	"github.com/vhdkit/vhd/internal/vdisk"
)

// validImage returns a dynamic 512/4096 disk with data in a few blocks,
// and its content.
func validImage(t testing.TB) ([]byte, []byte) {
	t.Helper()
	mem := testfile.NewMem()
	d, err := CreateFile(mem, "", &vdisk.CreateOptions{Size: 8 * miB, BlockSize: 1 * miB})
	if err != nil {
		t.Fatal(err)
	}
	for i, off := range []int64{0, 3*miB + 512, 7 * miB} {
		if _, err := d.WriteAt(bytes.Repeat([]byte{byte(i + 1)}, 4096), off); err != nil {
			t.Fatal(err)
		}
	}
	content := make([]byte, d.Size())
	if _, err := d.ReadAt(content, 0); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	return mem.Bytes(), content
}

// fixCRC recomputes the checksum of the structure at off of size n.
func fixCRC(img []byte, off, n int) {
	le.PutUint32(img[off+4:], checksum(img[off:off+n], 4))
}

// openDamaged opens img read-only; it returns the content when the open
// succeeds, and fails t when the error is not a typed one.
func openDamaged(t *testing.T, img []byte) ([]byte, error) {
	return openDamagedN(t, img, -1)
}

// openDamagedN is openDamaged reading only the first n bytes (n < 0:
// all).
func openDamagedN(t *testing.T, img []byte, n int64) ([]byte, error) {
	t.Helper()
	d, err := OpenFile(newROFile(img), "", &vdisk.OpenOptions{ReadOnly: true})
	if err != nil {
		if !errors.Is(err, vdisk.ErrCorrupt) && !errors.Is(err, errors.ErrUnsupported) {
			t.Fatalf("untyped error: %v", err)
		}
		return nil, err
	}
	defer d.Close()
	if n < 0 || n > d.Size() {
		n = d.Size()
	}
	got := make([]byte, n)
	if _, err := d.ReadAt(got, 0); err != nil && !errors.Is(err, vdisk.ErrCorrupt) {
		t.Fatalf("read: %v", err)
	}
	if _, err := Check(newROFile(img), "", nil); err != nil {
		t.Fatalf("check: %v", err)
	}
	return got, nil
}

func TestCorruptFields(t *testing.T) {
	img, content := validImage(t)
	const metaTab = createMetaOffset
	const bat = createBATOffset
	type damage struct {
		name     string
		mod      func(b []byte)
		fallback bool // the open must succeed with the same content
	}
	put64 := func(off int, v uint64) func([]byte) {
		return func(b []byte) { le.PutUint64(b[off:], v) }
	}
	cases := []damage{
		{"identifier signature", func(b []byte) { b[0] = 'X' }, false},
		{"header 1 signature", func(b []byte) { b[header1Offset] = 'X' }, true},
		{"header 1 crc", func(b []byte) { b[header1Offset+4]++ }, true},
		{"header 2 crc", func(b []byte) { b[header2Offset+100]++ }, true},
		{"both headers", func(b []byte) { b[header1Offset+4]++; b[header2Offset+4]++ }, false},
		{"header 2 version", func(b []byte) { b[header2Offset+66] = 2; fixCRC(b, header2Offset, headerSize) }, true},
		{"equal sequence, different", func(b []byte) {
			copy(b[header1Offset+8:], b[header2Offset+8:header2Offset+16])
			b[header1Offset+200] = 1
			fixCRC(b, header1Offset, headerSize)
		}, false},
		{"equal sequence, identical", func(b []byte) {
			copy(b[header1Offset:header1Offset+headerSize], b[header2Offset:header2Offset+headerSize])
		}, true},
		{"log offset unaligned", func(b []byte) {
			for _, h := range []int{header1Offset, header2Offset} {
				le.PutUint64(b[h+72:], miB+4096)
				fixCRC(b, h, headerSize)
			}
		}, false},
		{"log version with log guid", func(b []byte) {
			for _, h := range []int{header1Offset, header2Offset} {
				b[h+64], b[h+48] = 1, 1
				fixCRC(b, h, headerSize)
			}
		}, false},
		{"region table 1 crc", func(b []byte) { b[regionTable1Offset+20]++ }, true},
		{"region table 2 crc", func(b []byte) { b[regionTable2Offset+20]++ }, true},
		{"both region tables", func(b []byte) { b[regionTable1Offset+4]++; b[regionTable2Offset+4]++ }, false},
		{"region entry count", func(b []byte) {
			for _, r := range []int{regionTable1Offset, regionTable2Offset} {
				le.PutUint32(b[r+8:], 5000)
				fixCRC(b, r, regionTableSize)
			}
		}, false},
		{"region offset", func(b []byte) {
			for _, r := range []int{regionTable1Offset, regionTable2Offset} {
				le.PutUint64(b[r+16+16:], 12345)
				fixCRC(b, r, regionTableSize)
			}
		}, false},
		{"region overlaps log", func(b []byte) {
			for _, r := range []int{regionTable1Offset, regionTable2Offset} {
				le.PutUint64(b[r+16+16:], miB)
				fixCRC(b, r, regionTableSize)
			}
		}, false},
		{"region unknown required", func(b []byte) {
			for _, r := range []int{regionTable1Offset, regionTable2Offset} {
				b[r+16] ^= 0xff
				fixCRC(b, r, regionTableSize)
			}
		}, false},
		{"metadata signature", func(b []byte) { b[metaTab] = 'X' }, false},
		{"metadata count", func(b []byte) { le.PutUint16(b[metaTab+10:], 4000) }, false},
		{"metadata item offset", func(b []byte) { le.PutUint32(b[metaTab+32+16:], 100) }, false},
		{"metadata item length", func(b []byte) { le.PutUint32(b[metaTab+32+20:], 2*miB) }, false},
		{"metadata item beyond region", func(b []byte) { le.PutUint32(b[metaTab+32+16:], miB-4) }, false},
		{"metadata items overlap", func(b []byte) { le.PutUint32(b[metaTab+64+16:], 64*kiB+4) }, false},
		{"metadata missing item", func(b []byte) { le.PutUint16(b[metaTab+10:], 4) }, false},
		{"metadata unknown required", func(b []byte) { b[metaTab+32] ^= 0xff }, false},
		{"block size", func(b []byte) { le.PutUint32(b[metaTab+64*kiB:], 3*miB) }, false},
		{"virtual size zero", put64(metaTab+64*kiB+8, 0), false},
		{"virtual size huge", put64(metaTab+64*kiB+8, 1<<62), false},
		{"logical sector", func(b []byte) { le.PutUint32(b[metaTab+64*kiB+32:], 1000) }, false},
		{"has parent without locator", func(b []byte) { b[metaTab+64*kiB+4] |= 2 }, false},
		{"BAT reserved state", put64(bat, 4), false},
		{"BAT partially present in dynamic", func(b []byte) { b[bat] = 7 }, false},
		{"BAT present at 0", put64(bat+8, 6), false},
		{"BAT present in header section", put64(bat+8, 6|1<<19), false},
		{"BAT duplicate offset", func(b []byte) { copy(b[bat+8*3:], b[bat:bat+8]) }, false},
		{"BAT beyond EOF", put64(bat+8, 6|1<<40), false},
		{"BAT overlaps BAT", put64(bat+8, 6|createBATOffset), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := append([]byte(nil), img...)
			c.mod(b)
			got, err := openDamaged(t, b)
			if c.fallback {
				if err != nil {
					t.Fatalf("no fallback: %v", err)
				}
				if !bytes.Equal(got, content) {
					t.Fatal("fallback content differs")
				}
				return
			}
			if err == nil {
				t.Fatal("damage not detected")
			}
			fs, cerr := Check(newROFile(b), "", nil)
			if cerr != nil {
				t.Fatal(cerr)
			}
			if !hasError(fs) {
				t.Errorf("Check found nothing; open said %v", err)
			}
		})
	}
}

func hasError(fs []vdisk.Finding) bool {
	for _, f := range fs {
		if f.Severity == vdisk.SeverityError {
			return true
		}
	}
	return false
}

// TestCorruptSweep flips every byte of the defined fields of each
// structure, with and without a fixed checksum: the open must succeed or
// fail with a typed error, never panic.
func TestCorruptSweep(t *testing.T) {
	img, _ := validImage(t)
	type area struct {
		off, n   int
		crcOff   int // structure to re-checksum, -1 none
		crcBytes int
	}
	areas := []area{
		{header1Offset, 80, header1Offset, headerSize},
		{header2Offset, 80, header2Offset, headerSize},
		{regionTable1Offset, 80, regionTable1Offset, regionTableSize},
		{createMetaOffset, 32 + 6*32, -1, 0},
		{createMetaOffset + 64*kiB, 40, -1, 0},
		{createBATOffset, 64, -1, 0},
	}
	for _, a := range areas {
		for i := a.off; i < a.off+a.n; i++ {
			for _, fix := range []bool{false, true} {
				if fix && a.crcOff < 0 {
					continue
				}
				b := append([]byte(nil), img...)
				b[i] ^= 0x81
				if fix {
					fixCRC(b, a.crcOff, a.crcBytes)
				}
				openDamagedN(t, b, 64*kiB)
			}
		}
	}
}
