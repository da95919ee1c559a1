# Test-time augmentation for the DeepForest demo configs (tools/test.py CONFIG CKPT --tta), as MMDetection's
# *_tta.py files: each tile is seen at the training size (320 px) and slightly enlarged (352 px), each as is and
# flipped horizontally, vertically and diagonally (the flips training uses: an aerial view has no up or left);
# the eight views' boxes are mapped back to the tile and merged by NMS. Why 352: docs/detection.md.
tta_model = dict(type='DetTTAModel', tta_cfg=dict(nms=dict(type='nms', iou_threshold=0.6), max_per_img=300))
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='TestTimeAug',
        transforms=[
            [dict(type='Resize', scale=(s, s), keep_ratio=True) for s in (320, 352)],
            [
                dict(type='RandomFlip', prob=0., direction='horizontal'),
                dict(type='RandomFlip', prob=1., direction='horizontal'),
                dict(type='RandomFlip', prob=1., direction='vertical'),
                dict(type='RandomFlip', prob=1., direction='diagonal'),
            ],
            [dict(type='LoadAnnotations', with_bbox=True)],
            [
                dict(
                    type='PackDetInputs',
                    meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'flip',
                               'flip_direction'))
            ],
        ])
]
