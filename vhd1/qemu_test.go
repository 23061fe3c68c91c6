package vhd1

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/vhdkit/vhd/internal/testutil"
)

// TestQemuMade reads VHDs written by qemu-img 7.2 with and without
// force_size. The size is Current Size (FORMATS.md 2.4): qemu rounds a
// 10 MiB request up to the CHS value 10,514,432 and stores it there,
// while force_size keeps 10 MiB exactly. Content must equal what qemu
// reads. Then we write into qemu's file and qemu must read our writes.
func TestQemuMade(t *testing.T) {
	cases := []struct {
		opts string
		size int64
	}{
		{"subformat=dynamic", 10514432},
		{"subformat=dynamic,force_size=on", 10 << 20},
		{"subformat=fixed", 10514432},
		{"subformat=fixed,force_size=on", 10 << 20},
	}
	for _, tc := range cases {
		t.Run(tc.opts, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "q.vhd")
			testutil.Run(t, "qemu-img", "create", "-f", "vpc", "-o", tc.opts, path, "10M")
			testutil.Run(t, "qemu-io", "-f", "vpc",
				"-c", "write -P 0x5a 1M 64k",
				"-c", "write -P 0xa5 5242368 3k",
				"-c", "write -P 0x33 10481664 4k", path)
			d := openRO(t, path)
			if d.Size() != tc.size {
				t.Errorf("size %d, want %d", d.Size(), tc.size)
			}
			if q := qemuVirtualSize(t, path); q != tc.size {
				t.Errorf("qemu virtual-size %d, want %d", q, tc.size)
			}
			ours := readAll(t, d, d.Size())
			if !bytes.Equal(ours, qemuRaw(t, path)) {
				t.Error("content differs from qemu-img convert")
			}
			if ours[1<<20] != 0x5a || ours[5242368+100] != 0xa5 {
				t.Error("qemu's writes not visible")
			}
			checkClean(t, path, nil)
			d.Close()

			// Our writes into qemu's file, read back by qemu.
			w, err := Open(path, nil)
			if err != nil {
				t.Fatal(err)
			}
			pat := bytes.Repeat([]byte{0x77}, 5000)
			for _, off := range []int64{7<<20 + 3, 1<<20 + 100} {
				if _, err := w.WriteAt(pat, off); err != nil {
					t.Fatal(err)
				}
				copy(ours[off:], pat)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(ours, qemuRaw(t, path)) {
				t.Error("after our writes, qemu reads different content")
			}
			checkClean(t, path, nil)
		})
	}
}

// qemuRaw returns the content qemu-img reads from a VHD.
func qemuRaw(t *testing.T, path string) []byte {
	t.Helper()
	raw := filepath.Join(t.TempDir(), "q.raw")
	testutil.Run(t, "qemu-img", "convert", "-f", "vpc", "-O", "raw", path, raw)
	return fileBytes(t, raw)
}
