package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/vhdkit/vhd"
)

// openSource opens the source of a conversion; tests replace it to
// inject read failures.
var openSource = vhd.Open

// newConvertCmd is "vhd convert SRC DST ...".
func newConvertCmd() *cobra.Command {
	var (
		format, typ                string
		blockSize                  sizeFlag
		azure, showProgress, force bool
		noSync                     bool
		logicalSize, physicalSize  uint32
	)
	c := &cobra.Command{
		Use:   "convert SRC DST",
		Short: "Copy a disk into a new disk of any format",
		Long: `Convert copies the content of the disk SRC (any format, detected from
its content) into a new disk DST.

DST's format comes from its extension (.vhdx, .avhdx: VHDX; .vhd, .avhd:
VHD; .img, .raw, .bin: raw) unless --format says; VHD and VHDX output is
dynamic unless --type fixed. Only data is written: zero and unallocated
ranges of SRC are skipped, and so is every all-zero 4 KiB piece, so the
output stays sparse. A differencing SRC is read through its parents and
becomes a standalone disk.

DST appears only when the conversion is complete and synced: a failed or
interrupted conversion leaves nothing behind. An existing DST is an error
unless --force.

--azure makes what Azure accepts for upload: a fixed VHD whose size is
rounded up to a whole MiB.`,
		Example: `  vhd convert disk.img disk.vhdx --progress
  vhd convert disk.vhdx upload.vhd --azure`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := &vhd.ConvertOptions{
				Azure:     azure,
				Overwrite: force,
				NoSync:    noSync,

				LogicalSectorSize:  logicalSize,
				PhysicalSectorSize: physicalSize,
			}
			var err error
			if opts.Format, err = formatFlag(format); err != nil {
				return usageError{err, cmd}
			}
			if typ != "" {
				if opts.Type, err = vhd.ParseType(typ); err != nil {
					return usageError{err, cmd}
				}
			}
			if blockSize.n > math.MaxUint32 {
				return usageError{fmt.Errorf("block size %d too large", blockSize.n), cmd}
			}
			opts.BlockSize = uint32(blockSize.n)

			src, err := openSource(args[0], &vhd.OpenOptions{ReadOnly: true})
			if err != nil {
				return err
			}
			defer src.Close()
			if ext := vhd.FormatFromPath(args[1]); opts.Format != vhd.FormatUnknown &&
				ext != vhd.FormatUnknown && ext != opts.Format {
				logger(cmd).Warn("--format differs from DST's extension; "+
					"Windows and Hyper-V go by the extension",
					"format", opts.Format, "dst", args[1])
			}
			dstFormat := opts.Format
			if dstFormat == vhd.FormatUnknown {
				dstFormat = vhd.FormatFromPath(args[1])
			}
			if dstFormat == vhd.FormatVHD && opts.BlockSize > 0 && opts.BlockSize < 4096 {
				logger(cmd).Warn("VHD blocks under 4 KiB follow the "+
					"specification, but qemu-img and libvhdi misread them",
					"block-size", opts.BlockSize)
			}
			stderr := cmd.ErrOrStderr()
			var bar *progressbar.ProgressBar
			if showProgress || isTerminal(stderr) {
				bar = newBar(stderr, src.Size())
				opts.Progress = func(done, total int64) { bar.Set64(done) }
			}
			start := time.Now()
			err = vhd.Convert(cmd.Context(), src, args[1], opts)
			if bar != nil {
				if err == nil {
					bar.Finish()
				}
				fmt.Fprintln(stderr)
			}
			if errors.Is(err, fs.ErrExist) && !force {
				return fmt.Errorf("%w (use --force to replace it)", err)
			}
			if err != nil {
				return err
			}
			logger(cmd).Info("converted", "src", args[0], "dst", args[1],
				"bytes", src.Size(), "duration", time.Since(start))
			warnResized(cmd, src.Size(), args[1])
			return nil
		},
	}
	fl := c.Flags()
	fl.StringVar(&format, "format", "", "output format: vhdx, vhd or raw (default from DST's extension)")
	fl.StringVar(&typ, "type", "", "dynamic or fixed (default dynamic)")
	fl.Var(&blockSize, "block-size", "block size of a VHD or VHDX output")
	fl.Uint32Var(&logicalSize, "logical-sector-size", 0, "512 or 4096 (VHDX; default the source's)")
	fl.Uint32Var(&physicalSize, "physical-sector-size", 0, "512 or 4096 (VHDX; default the source's)")
	fl.BoolVar(&azure, "azure", false, "fixed VHD sized to a whole MiB, for Azure upload")
	fl.BoolVar(&showProgress, "progress", false, "show a progress bar on stderr (default when stderr is a terminal)")
	fl.BoolVarP(&force, "force", "f", false, "replace DST if it exists")
	fl.BoolVar(&noSync, "no-sync", false, "do not sync DST before renaming it into place (faster; not durable across a power loss)")
	return c
}

// warnResized warns when the disk at dst is not the source's size: a
// size rounded to whole sectors, to a whole MiB or to Azure's minimum
// (--azure) is padded with zeros.
func warnResized(cmd *cobra.Command, srcSize int64, dst string) {
	d, err := vhd.Open(dst, &vhd.OpenOptions{ReadOnly: true})
	if err != nil {
		return // the conversion has succeeded; nothing to add
	}
	defer d.Close()
	if n := d.Size(); n != srcSize {
		logger(cmd).Warn("the output's virtual size differs from the "+
			"source's; the difference reads as zeros",
			"src-size", srcSize, "dst-size", n)
	}
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// newBar makes a progress bar over total bytes on w.
func newBar(w io.Writer, total int64) *progressbar.ProgressBar {
	return progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription("converting"),
		progressbar.OptionShowBytes(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionShowElapsedTimeOnFinish(),
	)
}
