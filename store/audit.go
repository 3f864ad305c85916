package store

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"time"

	badger "github.com/dgraph-io/badger/v4"
)

var prefixAudit = []byte("a/")

// AppendAudit stores r under a new id that sorts by time: 16 hex digits of
// the Unix nanosecond time, then 8 random hex digits.
func (tx *Tx) AppendAudit(r *AuditRecord) error {
	if r.At.IsZero() {
		r.At = time.Now()
	}
	var b [12]byte
	binary.BigEndian.PutUint64(b[:8], uint64(r.At.UnixNano()))
	if _, err := rand.Read(b[8:]); err != nil {
		return err
	}
	r.ID = hex.EncodeToString(b[:])
	return tx.setJSON([]byte("a/"+r.ID), r)
}

// ListAudit returns rows records from start, newest first, and the total.
func (tx *Tx) ListAudit(start, rows int) ([]*AuditRecord, int, error) {
	opt := badger.DefaultIteratorOptions
	opt.Reverse = true
	opt.PrefetchValues = false
	opt.Prefix = prefixAudit
	it := tx.txn.NewIterator(opt)
	defer it.Close()
	var out []*AuditRecord
	total := 0
	seek := append(append([]byte{}, prefixAudit...), 0xff)
	for it.Seek(seek); it.ValidForPrefix(prefixAudit); it.Next() {
		if total >= start && total < start+rows {
			r := &AuditRecord{}
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, r) }); err != nil {
				return nil, 0, err
			}
			out = append(out, r)
		}
		total++
	}
	return out, total, nil
}
