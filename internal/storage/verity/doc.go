// Package verity reads the dm-verity metadata that hosts append to
// read-only ext4 layer images: the ext4 superblock gives the file system
// size, a dm-verity superblock follows the file system, and the Merkle
// tree's top block (right after it) yields the root digest.
package verity
