package vhdx

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/vhdkit/vhd/internal/testutil"
	"github.com/vhdkit/vhd/internal/vdisk"
)

// TestVhdimountChild: libvhdi's vhdimount finds the parent of a child we
// create through absolute_win32_path alone (by its file name, in the
// child's directory) and reads the child through it. vhdimount shows
// the chain base first: vhdi1 is the parent, vhdi2 the child.
func TestVhdimountChild(t *testing.T) {
	testutil.Tool(t, "vhdimount")
	fusermount := testutil.Tool(t, "fusermount")
	if _, err := os.Stat("/dev/fuse"); err != nil {
		testutil.Missing(t, "no /dev/fuse")
	}
	if os.Geteuid() != 0 {
		testutil.Missing(t, "vhdimount needs root here")
	}
	dir := t.TempDir()
	base, child := filepath.Join(dir, "base.vhdx"), filepath.Join(dir, "child.vhdx")
	const size = 8 * miB
	m := newModel(size)
	p, err := Create(base, &vdisk.CreateOptions{Size: size, BlockSize: miB})
	if err != nil {
		t.Fatal(err)
	}
	write := func(d *Disk, b byte, off, n int64) {
		buf := bytes.Repeat([]byte{b}, int(n))
		if _, err := d.WriteAt(buf, off); err != nil {
			t.Fatal(err)
		}
		m.write(buf, off)
	}
	write(p, 1, 0, 3*miB)
	write(p, 2, 6*miB, 4096)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	c, err := Create(child, &vdisk.CreateOptions{Parent: base, BlockSize: miB})
	if err != nil {
		t.Fatal(err)
	}
	write(c, 3, miB+512, 1536)
	write(c, 4, 5*miB, 2*miB)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	mnt := t.TempDir()
	testutil.Run(t, "vhdimount", child, mnt)
	t.Cleanup(func() { exec.Command(fusermount, "-u", mnt).Run() })
	got, err := os.ReadFile(filepath.Join(mnt, "vhdi2"))
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, size)
	m.read(want, 0)
	if !bytes.Equal(got, want) {
		t.Error("vhdimount reads the child differently")
	}
}
