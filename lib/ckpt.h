/* The data every module shares: a checkpoint, its fields and its verdict. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define FIELDS_MAX        16
#define FIELDS_UNSURE_MAX 8
#define FIELD_NAME_MAX    64
/* distinct field names held at most (field_name_intern()) */
#define FIELD_NAMES_MAX 65536

/* members of one checkpoint at most (struct ckpt.n_members is 16 bits): the
 * scan keeps the whole run of a larger group, see scan_dir() */
#define CKPT_MEMBERS_MAX UINT16_MAX

/* struct ckpt.uid of a checkpoint whose members have different owners. */
#define UID_MIXED ((uid_t)-1)

/* Numbers captured from a checkpoint's name, in the order they appear. The
 * names are interned (field_name_intern()): shared by every checkpoint and
 * pattern, never copied or freed per checkpoint. */
struct fields {
        size_t n;
        const char *name[FIELDS_MAX];
        double value[FIELDS_MAX];
        /* where value i is written in the name (0 length: not known), so
         * that "0.900" is shown as the name wrote it */
        uint8_t text_start[FIELDS_MAX];
        uint8_t text_len[FIELDS_MAX];
        /* Keys to which the name gives no one number, where each is
         * written in it: a value that is not a number ("val_loss=
         * tensor(0.1)", "val_loss=0,05"), a second value other than the
         * first, or a key past the FIELDS_MAX held. More of them than
         * FIELDS_UNSURE_MAX: unsure_more, and every key without a value
         * counts as unsure (fields_unsure()). */
        uint8_t unsure_start[FIELDS_UNSURE_MAX];
        uint8_t unsure_len[FIELDS_UNSURE_MAX];
        uint8_t n_unsure;
        bool unsure_more;
        /* fields whose value the name may give otherwise too (bit i: field
         * i): a template's "*" took a second one, or the rest of one */
        uint16_t unsure_fields;
};

/* The one copy of field name s[0..len) (len < FIELD_NAME_MAX), kept for the
 * life of the process; NULL on ENOMEM or when FIELD_NAMES_MAX distinct
 * names are held already. */
const char *field_name_intern(const char *s, size_t len);
/* The interned name of id (field_name_id()); "" for an id never given. */
const char *field_name(uint16_t id);
/* The id of field name s, interned if it was not (FIELD_NAMES_MAX ids fit 16
 * bits): 0, -EINVAL (too long) or -ENOMEM (or the table full). */
int field_name_id(const char *s, uint16_t *ret_id);
/* One field of a checkpoint as its record keeps it (ckpt_field()): the
 * name as its id and where the value is written in the checkpoint's name,
 * which is all it keeps of the value (ckpt_field_value()), so that a field
 * takes 4 bytes. */
struct field {
        uint16_t name_id; /* field_name(name_id) */
        /* as in struct fields; 0 long only past byte 255 of a longer name,
         * whose value is then not kept (NaN) */
        uint8_t text_start, text_len;
};

/* Index of field `name` in f, or -1. */
int fields_find(const struct fields *f, const char *name);
/* Value i of f as name wrote it, else number_format(); returns buf. */
char *fields_text(const struct fields *f, size_t i, const char *name, char *buf, size_t len);
/* v in the shortest form that reads back as v (0.9, not 0.90000000000000002),
 * "nan", "inf" or "-inf"; buf of at least 32 bytes; returns buf. */
char *number_format(double v, char *buf, size_t len);
/* s[0..n), a number as a pattern captures it ("0.25", "-1e-05", "nan"),
 * into *ret, the same double as strtod() in the C locale gives: 0, or
 * -ENOMEM (a copy of a long one). */
int number_parse(const char *s, size_t n, double *ret);
/* True when a and b hold the same names with the same values (NaN == NaN). */
bool fields_equal(const struct fields *a, const struct fields *b);
/* Whether name, parsed into f, gives key no one number (see unsure). */
bool fields_unsure(const struct fields *f, const char *name, const char *key);

enum keep_reason {
        KEEP_BEST,       /* among the keep_top_k best by monitor */
        KEEP_LAST,       /* among the keep_last newest by order */
        KEEP_EVERY,      /* order is a multiple of keep_every */
        KEEP_PINNED,     /* see enum pin_kind */
        KEEP_YOUNG,      /* younger than min_age */
        KEEP_INCOMPLETE, /* still being written: invisible to the policy */
        KEEP_UNREADABLE, /* a read it depends on failed: see ckpt.read_error */
        KEEP_OWNERS,     /* its files have several owners: no one's run decides it */
        KEEP_IN_USE,     /* another process has it open (seen right before deletion) */
        KEEP_WRITTEN,    /* the run's most recently completed ("newest-written") */
        KEEP_NO_MONITOR, /* a monitor is set and no checkpoint of the run carries it */
        _KEEP_REASON_MAX,
};

enum pin_kind {
        PIN_KEEPFILE, /* <name>.keep exists beside it */
        PIN_SYMLINK,  /* a symlink in the run points to it */
        PIN_POINTER,  /* a pointer file names it */
        PIN_HF_BEST,  /* best_model_checkpoint of the newest trainer_state.json */
        PIN_FLOCK,    /* another process holds a BSD flock on it */
        _PIN_KIND_MAX,
};

enum delete_reason {
        DELETE_NONE,
        DELETE_POLICY,
        DELETE_FLOOR,
        _DELETE_REASON_MAX,
};

enum order_source {
        ORDER_STEP,
        ORDER_EPOCH,
        ORDER_MTIME,
        _ORDER_SOURCE_MAX,
};

/* What could not be read (struct ckpt.read_what): ckpt_read_what() names it. */
enum read_what {
        READ_WHAT_NONE,
        READ_WHAT_IT,
        READ_WHAT_INODE,
        READ_WHAT_TREE,
        READ_WHAT_TREE_MOUNT,
        READ_WHAT_MARKER,
        READ_WHAT_METRIC,
        READ_WHAT_METRIC_NAME,
        READ_WHAT_METRIC_LOG,
        READ_WHAT_METRIC_LOG_UNLOGGED,
        READ_WHAT_METRIC_LOG_DAMAGED,
        READ_WHAT_METRIC_LOG_BEHIND,
        READ_WHAT_METRIC_ZERO,
        READ_WHAT_RUN,
        READ_WHAT_SHARED, /* its file: another checkpoint's name links it */
        _READ_WHAT_MAX,
};

struct verdict {
        int best_rank;         /* 1-based rank by monitor; 0 = unranked */
        uint16_t reasons;      /* bit (1u << enum keep_reason) */
        uint8_t delete_reason; /* enum delete_reason */
        bool keep;
};

/* One checkpoint of a run: a file, a directory, or a group of files whose
 * captured fields are all equal (TF's ckpt-7.index + ckpt-7.data-*). */
struct ckpt {
        /* 8-byte members first, then 4, 2, 1 and bits: the daemon keeps
         * one per checkpoint it tracks, so no padding between them */
        /* The first of its n_members entry names in the run directory,
         * sorted (ckpt_member()). packed: the names, the fields and a table
         * of the members are one allocation, ckpt_init_names(), laid out
         * as [char *members[n_members], when more than one][struct field
         * fields[n_fields]][the names, NUL-terminated], name pointing at
         * the first name; the fields are the first member's, equal in
         * every member. Else name is a string of its own, no fields, and
         * n_members 0 or 1. */
        char *name;
        double order;  /* step, else epoch, else mtime in seconds */
        double metric; /* when has_metric */

        uint64_t size_bytes; /* allocated bytes (st_blocks * 512), all members */
        int64_t mtime_usec;  /* newest mtime of any member or file inside */
        ino_t ino;           /* of members[0], re-checked before removal */
        /* for min_age: what ckptd timed itself (daemon/ages.c), when
         * age_known: its age at the run's last observation */
        int64_t age_usec;
        /* CLOCK_BOOTTIME since when mtime and size are as in this record,
         * when age_known (daemon/ages.c, which carries it and age_usec to
         * the record that replaces this one) */
        uint64_t seen_same_usec;

        /* st_dev of members[0], re-checked before removal: stat(2) encodes
         * it in 32 bits (the kernel's dev_t, new_encode_dev()); a wider one
         * is a read error of the checkpoint (ckpt_build()), never cut */
        uint32_t dev;
        uid_t uid; /* owner of every member; UID_MIXED when they differ */

        struct verdict verdict;

        uint16_t n_members; /* see members; at most CKPT_MEMBERS_MAX */

        /* -errno of the first read its verdict depends on that failed (an
         * open, its flock pin, its tree, its marker, its metric; or its run,
         * see struct run), 0 when none: it is then kept and takes no place
         * among best or last. read_what says what (enum read_what). An
         * errno is below 4096 (MAX_ERRNO). */
        int16_t read_error;

        uint8_t pins;         /* bit (1u << enum pin_kind) */
        uint8_t n_fields : 5; /* at most FIELDS_MAX */
        /* a group whose last member (TensorFlow's .index) is there but not
         * whole: cut short, or not readable (scan.c) */
        bool member_cut : 1;
        uint8_t read_what : 4;    /* enum read_what */
        uint8_t order_source : 2; /* enum order_source */
        bool is_dir : 1;
        bool has_metric : 1; /* monitor value found (it may still be NaN) */
        bool complete : 1;
        bool age_known : 1;    /* age_usec holds the age, not now - mtime_usec */
        bool packed : 1;       /* see members */
        bool seen_changed : 1; /* seen changing: seen_same_usec is a change it saw */
        /* its mtime was in the future when seen as it is (first, or since
         * its last change): a clock that lies, no sign of when it was
         * written (daemon/ages.c) */
        bool seen_future : 1;
        /* a directory without the complete_marker its watch requires
         * (require_marker), or that the marked ones of its run show is
         * still being saved (scan.c): incomplete, whatever the events say */
        bool unmarked : 1;
        bool marked : 1; /* a directory holding its complete_marker */
        /* files, each with another link (st_nlink > 1): removing it frees
         * no room, so the floor passes it by */
        bool linked : 1;
};

/* Field i (< n_fields) of c: in its packed allocation, before the names. */
static inline const struct field *ckpt_field(const struct ckpt *c, size_t i)
{
        return (const struct field *)(const void *)c->name - c->n_fields + i;
}

/* Member k (< n_members) of c: the first is its name, the others are in
 * the table at the start of its packed allocation. */
static inline const char *ckpt_member(const struct ckpt *c, size_t k)
{
        if (k == 0)
                return c->name;
        return ((char *const *)(const void *)ckpt_field(c, 0) - c->n_members)[k];
}

void ckpt_finish(struct ckpt *c);
/* Fill a zeroed c's members (names[0..n), sorted), name and fields (where
 * f, which may be NULL, says each value of names[0] is written) in one
 * allocation (packed). 0, -ENOMEM, or -EINVAL (also for a field whose text
 * is not in names[0] or reads as another value than f's). */
int ckpt_init_names(struct ckpt *c, const char *const *names, size_t n, const struct fields *f);
/* Whether a member of c has a name ending in s (ending), or holding it. */
bool ckpt_has_member_with(const struct ckpt *c, const char *s, bool ending);
/* Index of c's field `name`, or -1. */
int ckpt_field_find(const struct ckpt *c, const char *name);
/* The value of c's field i, read again from c->name as the pattern read it;
 * NaN when it is written past byte 255 of a longer name. */
double ckpt_field_value(const struct ckpt *c, size_t i);
/* c's field i as c->name wrote it, else number_format(); returns buf. */
char *ckpt_field_text(const struct ckpt *c, size_t i, char *buf, size_t len);

const char *keep_reason_to_string(enum keep_reason r);
const char *pin_kind_to_string(enum pin_kind k);
const char *delete_reason_to_string(enum delete_reason r);
const char *order_source_to_string(enum order_source s);
/* What c->read_what names ("its metric"), static; NULL for READ_WHAT_NONE. */
const char *ckpt_read_what(const struct ckpt *c);
