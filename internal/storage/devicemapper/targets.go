package devicemapper

import (
	"encoding/hex"
	"fmt"
	"strings"
)

// LinearTarget maps size bytes of dev starting at offset bytes to sector 0.
// Both values must be multiples of the sector size.
func LinearTarget(dev string, offset, size uint64) (Target, error) {
	if offset%SectorSize != 0 || size%SectorSize != 0 || size == 0 {
		return Target{}, fmt.Errorf("linear offset %d size %d not whole non-empty sectors: %w", offset, size, ErrBadTarget)
	}
	if err := checkDevArg(dev); err != nil {
		return Target{}, err
	}
	return Target{
		Length: size / SectorSize,
		Type:   "linear",
		Params: fmt.Sprintf("%s %d", dev, offset/SectorSize),
	}, nil
}

// Verity describes a dm-verity mapping whose hash tree follows the data on
// the same device.
type Verity struct {
	Version    int
	DataBytes  int64 // size of the protected data (the file system)
	BlockSize  int   // data and hash block size
	HashOffset int64 // first hash block, in BlockSize units
	Algorithm  string
	RootDigest string // hex
	Salt       string // hex, may be empty ("-" is sent)
}

// VerityTarget builds the verity table line for dev (data and hash device).
func VerityTarget(dev string, v Verity) (Target, error) {
	if err := checkDevArg(dev); err != nil {
		return Target{}, err
	}
	if v.BlockSize <= 0 || v.DataBytes <= 0 || v.DataBytes%int64(v.BlockSize) != 0 || v.DataBytes%SectorSize != 0 {
		return Target{}, fmt.Errorf("verity data size %d / block size %d: %w", v.DataBytes, v.BlockSize, ErrBadTarget)
	}
	if v.Algorithm == "" || strings.ContainsAny(v.Algorithm, " \t\n") {
		return Target{}, fmt.Errorf("verity algorithm %q: %w", v.Algorithm, ErrBadTarget)
	}
	if _, err := hex.DecodeString(v.RootDigest); err != nil || v.RootDigest == "" {
		return Target{}, fmt.Errorf("verity root digest %q: %w", v.RootDigest, ErrBadTarget)
	}
	salt := v.Salt
	if salt == "" {
		salt = "-"
	} else if _, err := hex.DecodeString(salt); err != nil {
		return Target{}, fmt.Errorf("verity salt %q: %w", v.Salt, ErrBadTarget)
	}
	dataBlocks := v.DataBytes / int64(v.BlockSize)
	return Target{
		Length: uint64(v.DataBytes / SectorSize),
		Type:   "verity",
		Params: fmt.Sprintf("%d %s %s %d %d %d %d %s %s %s",
			v.Version, dev, dev, v.BlockSize, v.BlockSize, dataBlocks, v.HashOffset,
			v.Algorithm, v.RootDigest, salt),
	}, nil
}

// CryptTarget builds a dm-crypt table line: aes-xts-plain64 with key over
// sectors sectors of dev, using 4096-byte encryption sectors.
func CryptTarget(dev string, key []byte, sectors uint64) (Target, error) {
	if err := checkDevArg(dev); err != nil {
		return Target{}, err
	}
	if len(key) != 64 {
		return Target{}, fmt.Errorf("crypt key of %d bytes, want 64: %w", len(key), ErrBadTarget)
	}
	sectors -= sectors % 8 // whole 4096-byte sectors
	if sectors == 0 {
		return Target{}, fmt.Errorf("crypt device too small: %w", ErrBadTarget)
	}
	return Target{
		Length: sectors,
		Type:   "crypt",
		Params: fmt.Sprintf("aes-xts-plain64 %s 0 %s 0 1 sector_size:4096", hex.EncodeToString(key), dev),
	}, nil
}

func checkDevArg(dev string) error {
	if dev == "" || strings.ContainsAny(dev, " \t\n\x00") {
		return fmt.Errorf("device %q: %w", dev, ErrBadTarget)
	}
	return nil
}
