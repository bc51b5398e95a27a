package wal

import "encoding/binary"

// Key layout. Every key starts with a one-byte prefix naming its family; the
// families never overlap, so a bounded iterator over one prefix sees only its
// own keys.
//
//	'r' seq(8, big endian)                    record frame, in sequence order; deleted once a checkpoint covers it
//	'e' account 0x00 seq(8, big endian)       record frame again, for the account's entry list (kept)
//	'c' seq(8) chunk(4, big endian)           checkpoint chunk
//	'm'                                       manifest of the latest checkpoint: seq(8) chunks(4) totalLen(8) crc32c(4)
//	'k' account 0x00 seq(8, big endian)       record frame again, for the account's call records (pruned by age)
//	't' time(8, big endian) seq(8)            account length(1) account requestID: every call record by record time
//	'q' requestID                             seq(8) time(8) account: the call record of a request
//	's' account 0x00 time(8, big endian)      statement snapshot: seq(8) balance(8, two's complement)
//	'a' name                                  durable state outside the money (operators, their tokens): its value
//
// Account IDs never contain 0x00 (the ledger validates them), so the separator
// keeps "ab" and "abc" apart.
const (
	prefixRecord     = 'r'
	prefixEntry      = 'e'
	prefixCheckpoint = 'c'
	prefixManifest   = 'm'
	prefixCall       = 'k'
	prefixCallTime   = 't'
	prefixCallID     = 'q'
	prefixSnapshot   = 's'
	prefixState      = 'a'
)

func appendRecordKey(dst []byte, seq uint64) []byte {
	dst = append(dst, prefixRecord)
	return binary.BigEndian.AppendUint64(dst, seq)
}

func appendEntryKey(dst []byte, account string, seq uint64) []byte {
	dst = append(dst, prefixEntry)
	dst = append(dst, account...)
	dst = append(dst, 0)
	return binary.BigEndian.AppendUint64(dst, seq)
}

func appendCheckpointKey(dst []byte, seq uint64, chunk uint32) []byte {
	dst = append(dst, prefixCheckpoint)
	dst = binary.BigEndian.AppendUint64(dst, seq)
	return binary.BigEndian.AppendUint32(dst, chunk)
}

var manifestKey = []byte{prefixManifest}

func appendCallKey(dst []byte, account string, seq uint64) []byte {
	dst = append(dst, prefixCall)
	dst = append(dst, account...)
	dst = append(dst, 0)
	return binary.BigEndian.AppendUint64(dst, seq)
}

func appendCallTimeKey(dst []byte, timeNanos int64, seq uint64) []byte {
	dst = append(dst, prefixCallTime)
	dst = binary.BigEndian.AppendUint64(dst, uint64(timeNanos))
	return binary.BigEndian.AppendUint64(dst, seq)
}

func appendCallIDKey(dst []byte, requestID string) []byte {
	dst = append(dst, prefixCallID)
	return append(dst, requestID...)
}

func appendSnapshotKey(dst []byte, account string, timeNanos int64) []byte {
	dst = append(dst, prefixSnapshot)
	dst = append(dst, account...)
	dst = append(dst, 0)
	return binary.BigEndian.AppendUint64(dst, uint64(timeNanos))
}
