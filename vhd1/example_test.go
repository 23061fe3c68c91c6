package vhd1_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/vhdkit/vhd/internal/vdisk"
	"github.com/vhdkit/vhd/vhd1"
)

func ExampleCreate() {
	dir, _ := os.MkdirTemp("", "vhd1")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "disk.vhd")

	d, err := vhd1.Create(path, &vdisk.CreateOptions{
		Type: vdisk.TypeDynamic,
		Size: 3<<20 + 512, // exact: any multiple of 512
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	d.WriteAt([]byte("hello"), 1<<20)
	d.Close()

	d, _ = vhd1.Open(path, &vdisk.OpenOptions{ReadOnly: true})
	defer d.Close()
	buf := make([]byte, 5)
	d.ReadAt(buf, 1<<20)
	for _, f := range d.Info().Details[:5] {
		fmt.Printf("%s: %#v\n", f.Key, f.Value)
	}
	fmt.Println(d.Size(), string(buf))
	// Output:
	// creator_application: "win "
	// creator_version: "10.0"
	// creator_host_os: "Wi2k"
	// geometry: "90/4/17"
	// chs_size: 3133440
	// 3146240 hello
}
