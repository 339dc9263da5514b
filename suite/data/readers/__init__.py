"""Readers for the real dataset formats. Every reader rejects a malformed file with a
:class:`MalformedFileError` (a ``ValueError``) naming the file and what was wrong, and every
dataset class is a lazy sequence: the file list is found on construction, samples are read
on access."""
from ._common import LayoutError, LazySequence, MalformedFileError, read_image, read_indexed_png
from .classification import (
    CIFAR10,
    CIFAR10C,
    CIFAR10C_CORRUPTIONS,
    WSOLMetadata,
    read_cifar_batch,
    write_cifar_batch,
)
from .edges import (
    BIPED,
    BSDS500,
    MDBD,
    DenoisingSet,
    EPSBenchmark,
    kair_noisy,
    read_bsds_gt,
    read_edge_map,
    read_weight_matrix,
    savemat_deterministic,
    segmentation_boundaries,
    write_bsds_gt,
    write_weight_matrix,
)
from .flow import (
    FlyingChairs,
    FlyingThings3D,
    Kitti2015,
    MiddleburyFlow,
    MiddleburyStereo,
    Sintel,
    flow_valid,
    read_disparity_pfm,
    read_flo,
    read_kitti_disparity,
    read_kitti_flow,
    read_middlebury_calib,
    read_motorcycle_npz,
    read_pfm,
    write_flo,
    write_kitti_disparity,
    write_kitti_flow,
    write_middlebury_calib,
    write_pfm,
)
from .segmentation import (
    SBD,
    SCRIBBLE_LENGTHS,
    VOC2012,
    BerkeleyInteractive,
    Davis,
    GrabCut,
    GSCScribbles,
    ScribbleSup,
    gsc_seeds,
    read_binary_mask,
    read_davis_annotation,
    read_grabcut_mask,
    read_gsc_scribble,
    read_palette_png,
    read_sbd_mat,
    scribble_folder,
    voc_palette,
    write_palette_png,
)
from .tracking import (
    OTB,
    VOT,
    Human36M,
    polygon_to_box,
    read_h36m_cameras,
    read_h36m_detections,
    read_h36m_positions,
    read_otb_groundtruth,
    read_vot_groundtruth,
)

__all__ = [name for name in dir() if not name.startswith("_")]
