package verity

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	"github.com/opengcs/opengcs/internal/storage/devicemapper"
)

// ext4 superblock facts (fs/ext4/ext4.h).
const (
	ext4SuperOffset    = 1024
	ext4Magic          = 0xEF53
	offBlocksLo        = 0x04
	offLogBlockSize    = 0x18
	offMagic           = 0x38
	offBlocksHi        = 0x150
	offFeatureIncompat = 0x60
	incompat64bit      = 0x80
)

// dm-verity superblock layout (veritysetup format version 1).
const (
	veritySignature = "verity\x00\x00"
	offVersion      = 8
	offHashType     = 12
	offAlgorithm    = 32
	offDataBlockSz  = 64
	offHashBlockSz  = 68
	offDataBlocks   = 72
	offSaltSize     = 80
	offSalt         = 88
	maxSalt         = 256
)

// Info is what is needed to build a dm-verity device over an image.
type Info struct {
	FSBytes    int64 // size of the ext4 file system (protected data)
	BlockSize  int   // verity data = hash block size
	DataBlocks uint64
	Version    uint32
	Algorithm  string
	Salt       string // hex
	RootDigest string // hex
}

// Target returns the device-mapper verity target for dev, with the hash
// tree starting one block after the verity superblock.
func (i *Info) Target(dev string) (devicemapper.Target, error) {
	return devicemapper.VerityTarget(dev, devicemapper.Verity{
		Version:    int(i.Version),
		DataBytes:  i.FSBytes,
		BlockSize:  i.BlockSize,
		HashOffset: int64(i.DataBlocks) + 1,
		Algorithm:  i.Algorithm,
		RootDigest: i.RootDigest,
		Salt:       i.Salt,
	})
}

// Ext4Size returns the size in bytes and block size of the ext4 file system
// at the start of r.
func Ext4Size(r io.ReaderAt) (int64, int, error) {
	sb := make([]byte, 1024)
	if _, err := r.ReadAt(sb, ext4SuperOffset); err != nil {
		return 0, 0, fmt.Errorf("read ext4 superblock: %w", err)
	}
	if binary.LittleEndian.Uint16(sb[offMagic:]) != ext4Magic {
		return 0, 0, ErrNotExt4
	}
	logBS := binary.LittleEndian.Uint32(sb[offLogBlockSize:])
	if logBS > 6 {
		return 0, 0, fmt.Errorf("ext4 log block size %d: %w", logBS, ErrNotExt4)
	}
	bs := 1024 << logBS
	blocks := uint64(binary.LittleEndian.Uint32(sb[offBlocksLo:]))
	if binary.LittleEndian.Uint32(sb[offFeatureIncompat:])&incompat64bit != 0 {
		blocks |= uint64(binary.LittleEndian.Uint32(sb[offBlocksHi:])) << 32
	}
	return int64(blocks) * int64(bs), bs, nil
}

// Read reads the verity metadata of the image or device at path.
func Read(path string) (*Info, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	info, err := ReadFrom(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return info, nil
}

// ReadFrom reads verity metadata from r (see Read).
func ReadFrom(r io.ReaderAt) (*Info, error) {
	fsBytes, _, err := Ext4Size(r)
	if err != nil {
		return nil, err
	}
	sb := make([]byte, 512)
	if _, err := r.ReadAt(sb, fsBytes); err != nil {
		return nil, fmt.Errorf("read verity superblock at %d: %w (%w)", fsBytes, ErrNoVerity, err)
	}
	if !bytes.Equal(sb[:8], []byte(veritySignature)) {
		return nil, ErrNoVerity
	}
	le := binary.LittleEndian
	info := &Info{
		FSBytes:    fsBytes,
		Version:    le.Uint32(sb[offVersion:]),
		Algorithm:  string(bytes.TrimRight(sb[offAlgorithm:offAlgorithm+32], "\x00")),
		DataBlocks: le.Uint64(sb[offDataBlocks:]),
	}
	dataBS, hashBS := le.Uint32(sb[offDataBlockSz:]), le.Uint32(sb[offHashBlockSz:])
	saltSize := int(le.Uint16(sb[offSaltSize:]))
	switch {
	case le.Uint32(sb[offHashType:]) != 1:
		return nil, fmt.Errorf("hash type %d: %w", le.Uint32(sb[offHashType:]), ErrBadSuperblock)
	case dataBS != hashBS || dataBS < 512 || dataBS > 1<<20 || dataBS&(dataBS-1) != 0:
		return nil, fmt.Errorf("block sizes %d/%d: %w", dataBS, hashBS, ErrBadSuperblock)
	case saltSize > maxSalt:
		return nil, fmt.Errorf("salt size %d: %w", saltSize, ErrBadSuperblock)
	case info.Algorithm != "sha256":
		return nil, fmt.Errorf("algorithm %q: %w", info.Algorithm, ErrBadSuperblock)
	case info.DataBlocks*uint64(dataBS) != uint64(fsBytes):
		return nil, fmt.Errorf("verity covers %d blocks of %d bytes, file system is %d bytes: %w",
			info.DataBlocks, dataBS, fsBytes, ErrBadSuperblock)
	}
	info.BlockSize = int(dataBS)
	salt := sb[offSalt : offSalt+saltSize]
	info.Salt = hex.EncodeToString(salt)
	// The tree's top level is the first hash block after the superblock
	// block; its salted hash is the root digest.
	top := make([]byte, dataBS)
	if _, err := r.ReadAt(top, fsBytes+int64(dataBS)); err != nil {
		return nil, fmt.Errorf("read hash tree top block: %w", err)
	}
	h := sha256.New()
	h.Write(salt)
	h.Write(top)
	info.RootDigest = hex.EncodeToString(h.Sum(nil))
	return info, nil
}
