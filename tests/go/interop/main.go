// Command interop answers labelcheck's cross-check questions with Go's own
// golang.org/x/mod/sumdb/note and tlog: it reads one JSON request on stdin
// and writes one JSON answer on stdout.  []byte fields are standard base64.
package main

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type openReq struct {
	Note  []byte   `json:"note"`
	Vkeys []string `json:"vkeys"`
}

type openResp struct {
	OK    bool     `json:"ok"`
	Error string   `json:"error,omitempty"`
	Text  string   `json:"text,omitempty"`
	Sigs  []string `json:"sigs,omitempty"`
}

type inclusionReq struct {
	Index int64    `json:"index"`
	Size  int64    `json:"size"`
	Leaf  []byte   `json:"leaf"`
	Proof [][]byte `json:"proof"`
	Root  []byte   `json:"root"`
}

type consistencyReq struct {
	Old     int64    `json:"old"`
	New     int64    `json:"new"`
	OldRoot []byte   `json:"old_root"`
	NewRoot []byte   `json:"new_root"`
	Proof   [][]byte `json:"proof"`
}

type checkResp struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// buildReq asks Go to build its own tree over the leaf data and answer
// roots and proofs, so Python's bytes can be compared with Go's.
type buildReq struct {
	Leaves      [][]byte   `json:"leaves"`
	Roots       []int64    `json:"roots"`
	Inclusion   [][2]int64 `json:"inclusion"`   // [index, size]
	Consistency [][2]int64 `json:"consistency"` // [old, new]
}

type buildResp struct {
	Roots       [][]byte   `json:"roots"`
	Inclusion   [][][]byte `json:"inclusion"`
	Consistency [][][]byte `json:"consistency"`
	Error       string     `json:"error,omitempty"`
}

type signReq struct {
	Name string `json:"name"`
	Text string `json:"text"`
}

type signResp struct {
	Vkey  string `json:"vkey"`
	Note  []byte `json:"note"`
	Error string `json:"error,omitempty"`
}

type request struct {
	Open        []openReq        `json:"open"`
	Inclusion   []inclusionReq   `json:"inclusion"`
	Consistency []consistencyReq `json:"consistency"`
	Build       *buildReq        `json:"build"`
	Sign        []signReq        `json:"sign"`
}

type response struct {
	Open        []openResp  `json:"open"`
	Inclusion   []checkResp `json:"inclusion"`
	Consistency []checkResp `json:"consistency"`
	Build       *buildResp  `json:"build,omitempty"`
	Sign        []signResp  `json:"sign"`
}

func toHash(b []byte) (tlog.Hash, error) {
	var h tlog.Hash
	if len(b) != tlog.HashSize {
		return h, fmt.Errorf("hash of %d bytes", len(b))
	}
	copy(h[:], b)
	return h, nil
}

func toHashes(bs [][]byte) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(bs))
	for i, b := range bs {
		h, err := toHash(b)
		if err != nil {
			return nil, err
		}
		out[i] = h
	}
	return out, nil
}

func fromHashes(hs []tlog.Hash) [][]byte {
	out := make([][]byte, len(hs))
	for i := range hs {
		out[i] = append([]byte(nil), hs[i][:]...)
	}
	return out
}

func check(err error) checkResp {
	if err != nil {
		return checkResp{Error: err.Error()}
	}
	return checkResp{OK: true}
}

func openNote(r openReq) openResp {
	var vs []note.Verifier
	for _, k := range r.Vkeys {
		v, err := note.NewVerifier(k)
		if err != nil {
			return openResp{Error: "verifier: " + err.Error()}
		}
		vs = append(vs, v)
	}
	n, err := note.Open(r.Note, note.VerifierList(vs...))
	if err != nil {
		return openResp{Error: err.Error()}
	}
	resp := openResp{OK: true, Text: n.Text}
	for _, s := range n.Sigs {
		resp.Sigs = append(resp.Sigs, s.Name)
	}
	return resp
}

func inclusion(r inclusionReq) checkResp {
	leaf, err := toHash(r.Leaf)
	if err != nil {
		return check(err)
	}
	root, err := toHash(r.Root)
	if err != nil {
		return check(err)
	}
	proof, err := toHashes(r.Proof)
	if err != nil {
		return check(err)
	}
	return check(tlog.CheckRecord(proof, r.Size, root, r.Index, leaf))
}

func consistency(r consistencyReq) checkResp {
	oldRoot, err := toHash(r.OldRoot)
	if err != nil {
		return check(err)
	}
	newRoot, err := toHash(r.NewRoot)
	if err != nil {
		return check(err)
	}
	proof, err := toHashes(r.Proof)
	if err != nil {
		return check(err)
	}
	return check(tlog.CheckTree(proof, r.New, newRoot, r.Old, oldRoot))
}

type hashList []tlog.Hash

func (l hashList) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(l)) {
			return nil, fmt.Errorf("stored hash %d not present", x)
		}
		out[i] = l[x]
	}
	return out, nil
}

func build(r *buildReq) *buildResp {
	var stored hashList
	for n, data := range r.Leaves {
		hs, err := tlog.StoredHashes(int64(n), data, stored)
		if err != nil {
			return &buildResp{Error: err.Error()}
		}
		stored = append(stored, hs...)
	}
	resp := &buildResp{}
	for _, size := range r.Roots {
		h, err := tlog.TreeHash(size, stored)
		if err != nil {
			return &buildResp{Error: err.Error()}
		}
		resp.Roots = append(resp.Roots, h[:])
	}
	for _, q := range r.Inclusion {
		p, err := tlog.ProveRecord(q[1], q[0], stored)
		if err != nil {
			return &buildResp{Error: err.Error()}
		}
		resp.Inclusion = append(resp.Inclusion, fromHashes(p))
	}
	for _, q := range r.Consistency {
		p, err := tlog.ProveTree(q[1], q[0], stored)
		if err != nil {
			return &buildResp{Error: err.Error()}
		}
		resp.Consistency = append(resp.Consistency, fromHashes(p))
	}
	return resp
}

func sign(r signReq) signResp {
	skey, vkey, err := note.GenerateKey(rand.Reader, r.Name)
	if err != nil {
		return signResp{Error: err.Error()}
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		return signResp{Error: err.Error()}
	}
	msg, err := note.Sign(&note.Note{Text: r.Text}, s)
	if err != nil {
		return signResp{Error: err.Error()}
	}
	return signResp{Vkey: vkey, Note: msg}
}

func main() {
	var req request
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		fmt.Fprintln(os.Stderr, "interop: bad request:", err)
		os.Exit(2)
	}
	resp := response{}
	for _, r := range req.Open {
		resp.Open = append(resp.Open, openNote(r))
	}
	for _, r := range req.Inclusion {
		resp.Inclusion = append(resp.Inclusion, inclusion(r))
	}
	for _, r := range req.Consistency {
		resp.Consistency = append(resp.Consistency, consistency(r))
	}
	if req.Build != nil {
		resp.Build = build(req.Build)
	}
	for _, r := range req.Sign {
		resp.Sign = append(resp.Sign, sign(r))
	}
	if err := json.NewEncoder(os.Stdout).Encode(resp); err != nil {
		fmt.Fprintln(os.Stderr, "interop:", err)
		os.Exit(1)
	}
}
