package store

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

func skillKey(id string) []byte       { return []byte("k/" + id) }
func skillNameKey(name string) []byte { return []byte("x/kn/" + strings.ToLower(name)) }

var prefixSkill = []byte("k/")

// GetSkill loads a skill by id.
func (tx *Tx) GetSkill(id string) (*Skill, error) {
	return getRecord[Skill](tx, skillKey(id))
}

// PutSkill creates or replaces a catalogue entry; names are unique ignoring case.
func (tx *Tx) PutSkill(sk *Skill) error {
	if !ValidID(sk.ID) || sk.Name == "" {
		return fmt.Errorf("store: bad skill")
	}
	return putNamed(tx, "skill", skillKey, skillNameKey, sk.ID, sk, func(sk *Skill) string { return sk.Name })
}

// ListSkills lists the catalogue by lower-cased name.
func (tx *Tx) ListSkills() ([]*Skill, error) {
	out, err := listRecords[Skill](tx, prefixSkill)
	slices.SortFunc(out, func(a, b *Skill) int { return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)) })
	return out, err
}

// DeleteSkill removes a skill and takes it away from every user holding it.
func (tx *Tx) DeleteSkill(id string) error {
	sk, err := tx.GetSkill(id)
	if err != nil {
		return err
	}
	holders, err := tx.UsersWithSkill(id)
	if err != nil {
		return err
	}
	for _, uid := range holders {
		u, err := tx.GetUser(uid)
		if errors.Is(err, ErrNotFound) {
			if err := tx.del(skillUserKey(id, uid)); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		u.Skills = slices.DeleteFunc(u.Skills, func(a SkillAssignment) bool { return a.SkillID == id })
		if err := tx.PutUser(u); err != nil {
			return err
		}
	}
	if err := tx.del(skillNameKey(sk.Name)); err != nil {
		return err
	}
	return tx.del(skillKey(id))
}
