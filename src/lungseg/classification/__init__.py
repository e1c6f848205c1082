"""Nodule classification: how suspicious a segmented nodule is (LIDC readers' malignancy scale).

patches.py builds the network input from a CT and a nodule mask (the same way for training crops
and whole scans), features.py the radiomics baseline's features, networks.py the classifiers to
compare, samples.py the labelled nodules, train.py `lungseg train` with `task: classification`."""
