package vdisk

import (
	"encoding/json"
	"fmt"
	"github.com/Microsoft/go-winio/pkg/guid"
	"io"
	"strings"
)

// Format is a container format.
type Format uint8

// Formats.
const (
	FormatUnknown Format = iota
	FormatRaw            // a plain image, byte for byte
	FormatVHD            // VHD version 1 (fixed, dynamic, differencing)
	FormatVHDX           // VHDX
)

var formatNames = [...]string{"unknown", "raw", "vhd", "vhdx"}

func (f Format) String() string {
	if int(f) < len(formatNames) {
		return formatNames[f]
	}
	return fmt.Sprintf("Format(%d)", uint8(f))
}

// MarshalText returns the name of the format.
func (f Format) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// ParseFormat parses a format name as printed by [Format.String]; "img"
// is accepted for raw.
func ParseFormat(s string) (Format, error) {
	switch strings.ToLower(s) {
	case "raw", "img":
		return FormatRaw, nil
	case "vhd", "vpc":
		return FormatVHD, nil
	case "vhdx":
		return FormatVHDX, nil
	}
	return FormatUnknown, fmt.Errorf("%w: unknown format %q", ErrInvalidArgument, s)
}

// Type is the allocation type of a disk.
type Type uint8

// Disk types.
const (
	TypeUnknown      Type = iota
	TypeFixed             // every block allocated at creation
	TypeDynamic           // blocks allocated on first write
	TypeDifferencing      // unallocated blocks read from a parent
)

var typeNames = [...]string{"unknown", "fixed", "dynamic", "differencing"}

func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

// MarshalText returns the name of the type.
func (t Type) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// ParseType parses a type name as printed by [Type.String].
func ParseType(s string) (Type, error) {
	switch strings.ToLower(s) {
	case "fixed":
		return TypeFixed, nil
	case "dynamic", "sparse", "expandable":
		return TypeDynamic, nil
	case "differencing", "diff":
		return TypeDifferencing, nil
	}
	return TypeUnknown, fmt.Errorf("%w: unknown disk type %q", ErrInvalidArgument, s)
}

// ExtentState says what a range of the virtual disk holds.
type ExtentState uint8

// Extent states.
const (
	// Unallocated: nothing is stored for the range in any file of the
	// chain; it reads as zeros.
	Unallocated ExtentState = iota
	// Zero: the range is recorded as zeros (VHDX PAYLOAD_BLOCK_ZERO,
	// UNMAPPED, UNDEFINED, or a known-zero block) and reads as zeros.
	Zero
	// Data: the range is stored in a file of the chain and must be read.
	Data
)

var stateNames = [...]string{"unallocated", "zero", "data"}

func (s ExtentState) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("ExtentState(%d)", uint8(s))
}

// MarshalText returns the name of the state.
func (s ExtentState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Extent is a run of the virtual disk with one state.
type Extent struct {
	Offset int64       `json:"offset"` // virtual offset
	Length int64       `json:"length"`
	State  ExtentState `json:"state"`
	// FileOffset is where the run's bytes start in the file that holds
	// them, or -1 when no file holds them (zero, unallocated) or the
	// file is not open (a parent skipped with [ParentPolicy.Skip]).
	FileOffset int64 `json:"file_offset"`
	// Depth is the position in the parent chain of the file that holds
	// the data: 0 the disk itself, 1 its parent, and so on.
	Depth int `json:"depth"`
}

// End returns Offset+Length.
func (e Extent) End() int64 { return e.Offset + e.Length }

// Field is one format-specific item of [Info], kept in order.
type Field struct {
	Key   string // snake_case, stable for scripts
	Value any    // string, number, bool or a JSON-marshallable value
}

// Fields is an ordered list of [Field]s; it marshals to a JSON object
// whose keys keep their order.
type Fields []Field

// MarshalJSON writes the fields as one JSON object.
func (fs Fields) MarshalJSON() ([]byte, error) {
	var b strings.Builder
	b.WriteByte('{')
	for i, f := range fs {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(f.Key)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(f.Value)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return []byte(b.String()), nil
}

// Info describes an open disk.
type Info struct {
	Path               string `json:"path,omitempty"`
	Format             Format `json:"format"`
	Type               Type   `json:"type"`
	VirtualSize        int64  `json:"virtual_size"`
	FileSize           int64  `json:"file_size"`
	BlockSize          uint32 `json:"block_size,omitempty"`
	LogicalSectorSize  uint32 `json:"logical_sector_size"`
	PhysicalSectorSize uint32 `json:"physical_sector_size"`
	// AllocatedBytes is the payload stored in this file (not its
	// parents): allocated blocks times the block size, or the virtual
	// size for fixed and raw disks.
	AllocatedBytes int64 `json:"allocated_bytes"`
	// ID identifies the disk: the VHDX Virtual Disk ID or the VHD Unique
	// Id, in canonical text form; empty for raw.
	ID string `json:"id,omitempty"`
	// ReadOnly is true when the disk was opened read-only.
	ReadOnly bool `json:"read_only"`
	// Details holds the format's own fields (header GUIDs, log state,
	// creator, geometry...).
	Details Fields `json:"details,omitempty"`
	// Parent describes the parent of a differencing disk.
	Parent *Info `json:"parent,omitempty"`
}

// Severity grades a [Finding].
type Severity uint8

// Severities.
const (
	SeverityInfo    Severity = iota // a fact worth reporting
	SeverityWarning                 // legal but unusual or risky
	SeverityError                   // the file breaks a rule
)

var severityNames = [...]string{"info", "warning", "error"}

func (s Severity) String() string {
	if int(s) < len(severityNames) {
		return severityNames[s]
	}
	return fmt.Sprintf("Severity(%d)", uint8(s))
}

// MarshalText returns the name of the severity.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Finding is one result of a consistency check.
type Finding struct {
	Severity  Severity `json:"severity"`
	Structure string   `json:"structure"` // "footer", "header 1", "BAT"...
	Offset    int64    `json:"offset"`    // file offset, -1 if none
	Rule      string   `json:"rule"`      // short stable id, e.g. "vhdx.header.crc"
	Message   string   `json:"message"`
}

// ParentPolicy says where a differencing disk may look for its parent.
type ParentPolicy struct {
	// AllowAbsolute permits absolute paths stored in the child (VHDX
	// absolute_win32_path and volume_path, VHD W2ku). Relative paths
	// and the parent's file name in the child's directory are always
	// tried.
	AllowAbsolute bool
	// Path, when set, is the parent to use instead of the stored paths.
	// Its identity is still checked.
	Path string
	// Skip opens a differencing disk without its parent, to describe
	// it (Info, Map, Check of its own structures) when the parent is
	// missing or does not match. The disk must be opened read-only;
	// reading a range the child does not hold fails with an error
	// wrapping [ErrParentNotFound]. Map reports such a range as Data
	// at depth 1 with FileOffset -1 (it must be read, and cannot be),
	// so a copy or comparison of the disk fails instead of taking the
	// parent's data for zeros. Check leaves the parent out. Path
	// and AllowAbsolute are ignored when Skip is set.
	Skip bool
}

// OpenOptions control how a disk is opened.
type OpenOptions struct {
	ReadOnly bool
	Parent   ParentPolicy
	// OpenFile opens the files of a parent chain; nil means
	// [OpenOSFile]. Tests supply in-memory files through it.
	OpenFile func(path string, readOnly bool) (File, error)
}

// Open opens path with o.OpenFile, or [OpenOSFile] when it is nil.
func (o *OpenOptions) Open(path string, readOnly bool) (File, error) {
	if o != nil && o.OpenFile != nil {
		return o.OpenFile(path, readOnly)
	}
	return OpenOSFile(path, readOnly)
}

// CreateOptions describe a new disk. Zero values take the format's
// defaults.
type CreateOptions struct {
	Type               Type
	Size               int64  // virtual size in bytes; differencing: parent's
	BlockSize          uint32 // VHDX default 32 MiB, VHD 2 MiB
	LogicalSectorSize  uint32 // 512 or 4096 (VHDX); VHD only 512
	PhysicalSectorSize uint32 // 512 or 4096
	// Parent is the parent's path, for differencing disks. The child
	// records it relative to the child's directory and as an absolute
	// path.
	Parent string
	// ID sets the disk identifier (VHDX Virtual Disk ID, VHD Unique
	// Id); the zero GUID means a random one (a VHDX child takes its
	// parent's Virtual Disk ID).
	ID guid.GUID
}

// Image is what every format's open disk provides. The root package's
// Disk interface has the same method set.
type Image interface {
	io.ReaderAt
	io.WriterAt
	Size() int64
	Sync() error
	Close() error
	Map(off, length int64) ([]Extent, error)
	Info() Info
}
