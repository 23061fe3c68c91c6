package vhd1

import (
	"path/filepath"
	"testing"

	"github.com/vhdkit/vhd/internal/testfile"
	"github.com/vhdkit/vhd/internal/testutil"
	"github.com/vhdkit/vhd/internal/vdisk"
)

func TestAzureSize(t *testing.T) {
	for _, tc := range []struct{ in, want int64 }{
		{1, 20 << 20},
		{20 << 20, 20 << 20},
		{30<<20 + 512, 31 << 20},
		{10514432, 20 << 20},
		{31473664, 31 << 20},
		{1 << 40, 1 << 40},
	} {
		if got := AzureSize(tc.in); got != tc.want {
			t.Errorf("AzureSize(%d) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func azureFindings(t *testing.T, path string) []vdisk.Finding {
	t.Helper()
	f, err := vdisk.OpenOSFile(path, true)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fs, err := CheckAzure(f, path)
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

// TestCheckAzure: a qemu-made default VHD breaks the size rule (qemu
// rounds 30 MiB to 31,473,664 bytes, FORMATS.md 4.2) and, if dynamic,
// the type rule; a fixed VHD we create with AzureSize passes.
func TestCheckAzure(t *testing.T) {
	dir := t.TempDir()
	qdyn := filepath.Join(dir, "qemu-dynamic.vhd")
	testutil.Run(t, "qemu-img", "create", "-q", "-f", "vpc", qdyn, "30M")
	fs := azureFindings(t, qdyn)
	for _, rule := range []string{"azure.size_mib", "azure.type", "azure.footer"} {
		if (rule == "azure.footer") == hasRule(fs, rule) {
			t.Errorf("qemu dynamic: rule %s: findings %+v", rule, fs)
		}
	}

	qfix := filepath.Join(dir, "qemu-fixed.vhd")
	testutil.Run(t, "qemu-img", "create", "-q", "-f", "vpc", "-o", "subformat=fixed", qfix, "30M")
	fs = azureFindings(t, qfix)
	if !hasRule(fs, "azure.size_mib") || hasRule(fs, "azure.type") {
		t.Errorf("qemu fixed: %+v", fs)
	}

	ours := filepath.Join(dir, "ours.vhd")
	d, err := Create(ours, &vdisk.CreateOptions{Type: vdisk.TypeFixed,
		Size: AzureSize(31473664)})
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	if fs := azureFindings(t, ours); len(fs) != 0 {
		t.Errorf("our Azure disk: %+v", fs)
	}
	if size := int64(len(fileBytes(t, ours))); size != 31<<20+512 {
		t.Errorf("file size %d, want 31 MiB + 512", size)
	}
	checkClean(t, ours, nil)

	// A disk too small, with a foreign host OS and a CHS creator.
	small := fixedSample(t)
	ft, _ := ParseFooter(small[len(small)-512:])
	ft.CreatorHostOS = [4]byte{'M', 'a', 'c', ' '}
	ft.CreatorApp = [4]byte{'v', 'p', 'c', ' '}
	ft.DataOffset = 0
	copy(small[len(small)-512:], ft.Encode())
	fs, err = CheckAzure(testfile.FromBytes(small), "small")
	if err != nil {
		t.Fatal(err)
	}
	for _, rule := range []string{"azure.size_range", "azure.creator_host_os",
		"azure.creator_application", "azure.data_offset"} {
		if !hasRule(fs, rule) {
			t.Errorf("rule %s not reported: %+v", rule, fs)
		}
	}
	// A bad checksum is reported too.
	small[len(small)-512+100] ^= 1
	fs, _ = CheckAzure(testfile.FromBytes(small), "small")
	if !hasRule(fs, "azure.footer.checksum") {
		t.Errorf("checksum not reported: %+v", fs)
	}
}
