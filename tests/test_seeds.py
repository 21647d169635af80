from rnncompare.core.seeds import derive_seed, evaluation_seeds, trial_seed


def test_derived_seeds_are_sha256_of_seed_and_purpose():
    import hashlib

    assert derive_seed(42, "split") == int.from_bytes(hashlib.sha256(b"42:split").digest()[:4], "big") % (2**31 - 1)
    assert len({derive_seed(42, purpose) for purpose in ("split", "tuner", "weights")}) == 3


def test_every_architecture_gets_the_same_evaluation_seeds_and_more_seeds_extend_the_list():
    assert evaluation_seeds(7, 3) == [derive_seed(7, f"evaluation-{index}") for index in range(3)]
    assert evaluation_seeds(7, 5)[:3] == evaluation_seeds(7, 3)
    assert evaluation_seeds(7, 0) == []


def test_a_trials_weight_seed_depends_on_the_study_seed_and_the_trial_id_only():
    # the rule the resume and distributed tests rely on: a rerun trial starts exactly as before
    assert trial_seed(7, "03") == derive_seed(derive_seed(7, "weights"), "trial-03")
    assert trial_seed(7, "03") != trial_seed(7, "04") != trial_seed(8, "04")
