package vhd_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/vhdkit/vhd"
)

// Create a dynamic VHDX, write to it, and look at its allocation map.
func ExampleCreate() {
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	d, err := vhd.Create(filepath.Join(dir, "disk.vhdx"), vhd.FormatUnknown,
		&vhd.CreateOptions{Size: 64 << 20, BlockSize: 1 << 20})
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	if _, err := d.WriteAt([]byte("hello"), 5<<20); err != nil {
		log.Fatal(err)
	}
	ext, err := d.Map(0, d.Size())
	if err != nil {
		log.Fatal(err)
	}
	info := d.Info()
	fmt.Println(info.Format, info.Type, info.VirtualSize)
	for _, e := range ext {
		fmt.Println(e.Offset, e.Length, e.State)
	}
	// Output:
	// vhdx dynamic 67108864
	// 0 5242880 unallocated
	// 5242880 1048576 data
	// 6291456 60817408 unallocated
}

// Convert a raw image to a VHDX, then check that both hold the same
// content.
func ExampleConvert() {
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	img := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(img, []byte("boot sector"), 0o644); err != nil {
		log.Fatal(err)
	}
	if err := os.Truncate(img, 16<<20); err != nil {
		log.Fatal(err)
	}

	src, err := vhd.Open(img, &vhd.OpenOptions{ReadOnly: true})
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()
	ctx := context.Background()
	out := filepath.Join(dir, "disk.vhdx")
	if err := vhd.Convert(ctx, src, out, nil); err != nil {
		log.Fatal(err)
	}

	dst, err := vhd.Open(out, &vhd.OpenOptions{ReadOnly: true})
	if err != nil {
		log.Fatal(err)
	}
	defer dst.Close()
	diff, err := vhd.Compare(ctx, src, dst)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(dst.Info().Format, diff == nil)
	// Output: vhdx true
}
