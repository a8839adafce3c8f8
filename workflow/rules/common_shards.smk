# Functions of the sharded inference rules (inference block, dnalm.shards): how many shards each step has, each
# shard job's place, and the parts a merge rule joins. A step with one shard keeps its single rule
# (evaluate_model, predict_tracks, score_variants); with more, its shard and merge rules replace it.
import dnalm.shards

SHARDS = {
    step: dnalm.shards.step_shards(config["inference"], step)
    for step in dnalm.shards.STEPS
}


def get_shard_parts(step, pattern):
    """Input function of a merge rule: every shard's part of `step` (`pattern` with a {shard} field), in order."""

    def parts(wildcards):
        return expand(pattern, shard=range(SHARDS[step]), **dict(wildcards.items()))

    return parts


def get_shard(step):
    """Params function of a shard rule: its shard (0-based) and the step's number of shards."""

    def shard(wildcards):
        return {"shard": int(wildcards.shard), "shards": SHARDS[step]}

    return shard
