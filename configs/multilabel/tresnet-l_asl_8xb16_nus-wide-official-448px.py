# NUS-WIDE with the dataset's official train/test lists (ImageList/{Train,Test}Imagelist.txt and
# Groundtruth/TrainTestLabels/Labels_<concept>_{Train,Test}.txt) instead of the seeded 70/30 split.
_base_ = './tresnet-l_asl_8xb16_nus-wide-448px.py'
train_dataloader = dict(dataset=dict(split_mode='official'))
val_dataloader = dict(dataset=dict(split_mode='official'))
test_dataloader = val_dataloader
