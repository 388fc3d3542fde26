/* Presets: the checkpoint layout of each trainer as watch defaults. Adding
 * one is an entry in the table below plus a line in config/ckptd.conf and
 * ckptd.conf(5); explicit keys in the config override every member. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "macro.h"
#include "pattern.h"
#include "preset.h"
#include "fsutil.h"

/* tf.train.CheckpointManager, and tf.keras through it: the prefix ckpt-7
 * is ckpt-7.index + ckpt-7.data-00000-of-00001 (one checkpoint: the pattern
 * groups files with equal fields), and the text-format CheckpointState in
 * `checkpoint` names the latest (model_checkpoint_path) and the ones it
 * still manages (all_model_checkpoint_paths), all pinned. The bundle writer
 * writes each file as "<name>.tempstate<random>" and renames it in, the
 * .data files first and the .index last; a sharded save renames its shards'
 * .data files in and then writes the merged .index in place (MergeBundles).
 * Its removal goes the other way, the .index first. Keras's own ckpt-N.keras
 * or .h5 file is a group of one, with no .data. */
#define TF_PRESET(n)                                                                                                   \
        {                                                                                                              \
                .name = (n), .pattern = "ckpt-{step}.*", .kind = KIND_FILE, .metric_source = METRIC_NAME,              \
                .pointer_files = {"checkpoint", NULL}, .exclude = {"*.tempstate*", NULL}, .member_data = ".data-",     \
                .member_last = ".index",                                                                               \
                .summary = "TensorFlow/Keras ckpt-N.index + .data-* prefixes, `checkpoint` state pinned",              \
        }

const struct preset presets[] = {
        {
                /* No layout of its own: the operator names the pattern. */
                .name = "generic",
                .kind = KIND_ANY,
                .metric_source = METRIC_NAME,
                .summary = "any layout; pattern is required",
        },
        {
                /* ModelCheckpoint: "epoch=3-step=1000-val_loss=0.1234.ckpt",
                 * "-v1" on a clash; a pasted filename= template matches its
                 * names with and without auto_insert_metric_name (pattern.c).
                 * last.ckpt / last-v1.ckpt are copies or links of the newest
                 * one and must never be ranked or deleted as checkpoints; so
                 * are "epoch=3-last.ckpt" and its "-v1", the names of
                 * CHECKPOINT_NAME_LAST = "{epoch}-last" (Lightning's own
                 * example), which carry fields. */
                .name = "lightning",
                .match = {"*.ckpt", NULL},
                .kind = KIND_FILE,
                .metric_source = METRIC_NAME,
                .exclude = {"last*.ckpt", "*-last.ckpt", "*-last-v*.ckpt", NULL},
                /* default_root_dir/lightning_logs/version_N/checkpoints:
                 * CSVLogger and TensorBoardLogger write into version_N */
                .metric_log = {"../metrics.csv", "../events.out.tfevents.*", NULL},
                .summary = "PyTorch Lightning *.ckpt files, key=value names",
        },
        {
                /* Trainer: checkpoint-500/ with trainer_state.json written
                 * last, which is also where the metrics live; written in
                 * place, so a directory without it is a save under way or
                 * one that died, however quiet. */
                .name = "huggingface",
                .pattern = "checkpoint-{step}",
                .kind = KIND_DIR,
                .metric_source = METRIC_HF_STATE,
                .complete_marker = "trainer_state.json",
                .require_marker = true,
                .summary = "Hugging Face Trainer checkpoint-N dirs, metrics from trainer_state.json",
        },
        {
                /* The `latest` file names the tag resume will load. */
                .name = "deepspeed",
                .pattern = "global_step{step}",
                .kind = KIND_DIR,
                .metric_source = METRIC_NAME,
                .pointer_files = {"latest", NULL},
                .summary = "DeepSpeed global_stepN dirs, no metric, `latest` pinned",
        },
        {
                /* CheckpointManager: <step>/ committed by commit_success.txt
                 * (non-atomic filesystems) or by rename from a tmp dir, which
                 * writes no marker: one cannot be required, but where the
                 * run's others have it, one without it is a save under way
                 * (scan.c). {step} takes any numbered directory: only a run
                 * where one holds Orbax's marks is Orbax's (scan.c). */
                .name = "orbax",
                .pattern = "{step}",
                .kind = KIND_DIR,
                .metric_source = METRIC_JSON_FILE,
                .metric_file = "metrics/metrics",
                .complete_marker = "commit_success.txt",
                .exclude = {"*.orbax-checkpoint-tmp*", NULL},
                .summary = "Orbax step dirs, metrics from metrics/metrics",
        },
        {
                /* The tracker file holds the iteration number, not a name. */
                .name = "megatron",
                .pattern = "iter_{step}",
                .kind = KIND_DIR,
                .metric_source = METRIC_NAME,
                .pointer_files = {"latest_checkpointed_iteration.txt", NULL},
                .summary = "Megatron-LM iter_N dirs, no metric, tracker file pinned",
        },
        {
                /* exp_manager: Lightning-style names, .nemo for the final
                 * model; "-last" copies are excluded, with the "-last-v1"
                 * Lightning writes on a clash (they carry fields, so key=value
                 * mode would rank them) and the EMA copy of "-last"; X-EMA.ckpt,
                 * the EMA weights of X.ckpt, is one checkpoint with it (scan.c);
                 * "-unfinished" markers are handled by the scan for every
                 * preset. */
                .name = "nemo",
                .match = {"*.ckpt", "*.nemo", NULL},
                .kind = KIND_FILE,
                .metric_source = METRIC_NAME,
                .exclude = {"*-last.ckpt", "*-last.nemo", "*-last-v*.ckpt", "*-last-EMA.ckpt", NULL},
                .summary = "NeMo *.ckpt/*.nemo files, key=value names",
        },
        {
                /* torch.distributed.checkpoint writes .metadata last, in
                 * place, once every rank has written its shards. */
                .name = "dcp",
                .pattern = "step-{step}",
                .kind = KIND_DIR,
                .metric_source = METRIC_NAME,
                .complete_marker = ".metadata",
                .require_marker = true,
                .summary = "torch.distributed.checkpoint step-N dirs, no metric",
        },
        TF_PRESET("tensorflow"),
        TF_PRESET("keras"),
        {
                /* Each run is looked at on its own (preset_detect()); one
                 * that matches no layout has no checkpoints: nothing in it
                 * is touched. */
                .name = "auto",
                .kind = KIND_ANY,
                .metric_source = METRIC_NAME,
                /* as the layout found in each run requires; false: never */
                .require_marker = true,
                .summary = "detected in each run from what is in it; unknown layouts are left alone",
        },
        {.name = NULL},
};

const struct preset *preset_find(const char *name)
{
        if (!name)
                return NULL;
        for (const struct preset *p = presets; p->name; p++)
                if (strcmp(p->name, name) == 0)
                        return p;
        return NULL;
}

/* Replace *dst with a copy of src (NULL stays NULL). */
static int replace_string(char **dst, const char *src)
{
        char *copy = NULL;

        if (src) {
                copy = strdup(src);
                if (!copy)
                        return -ENOMEM;
        }
        free(*dst);
        *dst = copy;
        return 0;
}

int preset_apply(const struct preset *p, struct watch_conf *w)
{
        int r;

        r = replace_string(&w->preset, p->name);
        if (r < 0)
                return r;
        r = replace_string(&w->pattern, p->pattern);
        if (r < 0)
                return r;
        r = replace_string(&w->metric_file, p->metric_file);
        if (r < 0)
                return r;
        r = replace_string(&w->complete_marker, p->complete_marker);
        if (r < 0)
                return r;
        w->require_marker = p->require_marker;
        w->kind = p->kind;
        w->metric_source = p->metric_source;

        /* Pointer files and match globs describe one layout: replace them.
         * Excludes only ever narrow what is touched: add to them. */
        strv_finish(&w->pointer_files);
        for (size_t i = 0; i < ELEMENTSOF(p->pointer_files) && p->pointer_files[i]; i++) {
                r = strv_push(&w->pointer_files, p->pointer_files[i]);
                if (r < 0)
                        return r;
        }
        strv_finish(&w->metric_log);
        for (size_t i = 0; i < ELEMENTSOF(p->metric_log) && p->metric_log[i]; i++) {
                r = strv_push(&w->metric_log, p->metric_log[i]);
                if (r < 0)
                        return r;
        }
        strv_finish(&w->match);
        for (size_t i = 0; i < ELEMENTSOF(p->match) && p->match[i]; i++) {
                r = strv_push(&w->match, p->match[i]);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < ELEMENTSOF(p->exclude) && p->exclude[i]; i++) {
                r = strv_push(&w->exclude, p->exclude[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* "<prefix><digits><suffix>" with at least one digit. */
static bool numbered(const char *name, const char *prefix, const char *suffix)
{
        size_t lp = strlen(prefix), ls = strlen(suffix), ln = strlen(name), i;

        if (ln < lp + ls + 1 || strncmp(name, prefix, lp) != 0 || strcmp(name + ln - ls, suffix) != 0)
                return false;
        for (i = lp; i < ln - ls; i++)
                if (!isdigit((unsigned char)name[i]))
                        return false;
        return true;
}

/* Whether dir/name exists beneath run_fd. A failure to look (EACCES, EIO)
 * is "no" as well: the layout that needed the marker is then not
 * recognised, and an unrecognised run is left alone (fail closed). */
static bool has_entry(int run_fd, const char *dir, const char *name)
{
        _cleanup_free_ char *path = NULL;
        int fd;

        if (asprintf(&path, "%s/%s", dir, name) < 0)
                return false;
        fd = openat_beneath(run_fd, path, O_PATH | O_NOFOLLOW | O_CLOEXEC, 0);
        if (fd < 0)
                return false;
        close(fd);
        return true;
}

bool preset_orbax_marked(int run_fd, const char *dir, const char *marker)
{
        /* the step's metadata (since 0.5), the commit of a non-atomic
         * save, the metrics CheckpointManager writes, the files of a
         * Checkpointer saving into the step itself (OCDBT's), and of the
         * item saved without a name (OCDBT's, or the older msgpack). Not
         * those of any item: a job's directory holding a checkpoint of
         * its own (4711/final/_METADATA) is no step. */
        static const char *const marks[] = {
                "_CHECKPOINT_METADATA", "commit_success.txt", "metrics/metrics",   "_METADATA",
                "manifest.ocdbt",       "_sharding",          "default/_METADATA", "default/manifest.ocdbt",
                "default/_sharding",    "default/checkpoint",
        };

        for (size_t i = 0; i < ELEMENTSOF(marks); i++)
                if (has_entry(run_fd, dir, marks[i]))
                        return true;
        return marker && *marker && has_entry(run_fd, dir, marker);
}

const struct preset *preset_detect(int run_fd, char *const *names, const bool *is_dir, size_t n, const char **ret_why)
{
        enum { TF, DS, MG, HF, DCP, ORBAX, NEMO, LIGHTNING, _N };
        static const char *const preset_of[_N] = {"tensorflow", "deepspeed", "megatron", "huggingface",
                                                  "dcp",        "orbax",     "nemo",     "lightning"};
        static const char *const why_of[_N] = {
                "a `checkpoint` state file and ckpt-N.index files",
                "global_stepN directories",
                "iter_N directories or latest_checkpointed_iteration.txt",
                "checkpoint-N directories holding trainer_state.json",
                "step-N directories holding .metadata",
                "numbered step directories holding Orbax's files (_CHECKPOINT_METADATA, commit_success.txt, "
                "metrics/metrics, default/)",
                "*.nemo files, NeMo's *-last.ckpt copies, *-EMA.ckpt copies or -unfinished markers",
                "*.ckpt files",
        };
        bool seen[_N] = {false}, tf_state = false, tf_index = false;

        for (size_t i = 0; i < n; i++) {
                const char *name = names[i];
                size_t len = strlen(name);

                if (!is_dir[i]) {
                        if (strcmp(name, "checkpoint") == 0)
                                tf_state = true;
                        else if (strncmp(name, "ckpt-", 5) == 0 && len > 6 && strcmp(name + len - 6, ".index") == 0)
                                tf_index = true;
                        else if (strcmp(name, "latest_checkpointed_iteration.txt") == 0)
                                seen[MG] = true;
                        else if (len > 5 && strcmp(name + len - 5, ".nemo") == 0)
                                seen[NEMO] = true;
                        else if (len > 10 && strcmp(name + len - 10, "-last.ckpt") == 0)
                                seen[NEMO] = true;
                        /* NeMo's EMA copy of X.ckpt, one checkpoint with it
                         * (Lightning would part them), and the marker of a
                         * save under way: a run with save_last off has
                         * neither of the two above until training ends */
                        else if (len > 9 && strcmp(name + len - 9, "-EMA.ckpt") == 0)
                                seen[NEMO] = true;
                        else if (len > 11 && strcmp(name + len - 11, "-unfinished") == 0)
                                seen[NEMO] = true;
                        else if (len > 5 && strcmp(name + len - 5, ".ckpt") == 0)
                                seen[LIGHTNING] = true;
                        continue;
                }
                if (numbered(name, "global_step", ""))
                        seen[DS] = true;
                else if (numbered(name, "iter_", ""))
                        seen[MG] = true;
                else if (!seen[HF] && numbered(name, "checkpoint-", "") &&
                         has_entry(run_fd, name, "trainer_state.json"))
                        seen[HF] = true;
                else if (!seen[DCP] && numbered(name, "step-", "") && has_entry(run_fd, name, ".metadata"))
                        seen[DCP] = true;
                else if (!seen[ORBAX] && numbered(name, "", "") && preset_orbax_marked(run_fd, name, NULL))
                        seen[ORBAX] = true;
        }
        seen[TF] = tf_state && tf_index;
        /* The most specific evidence first: a NeMo run holds *.ckpt too. */
        for (int k = 0; k < _N; k++)
                if (seen[k]) {
                        if (ret_why)
                                *ret_why = why_of[k];
                        return preset_find(preset_of[k]);
                }
        if (ret_why)
                *ret_why = "no known layout (checkpoint-N, global_stepN, iter_N, step dirs, ckpt-N.index, *.ckpt, "
                           "*.nemo)";
        return NULL;
}
