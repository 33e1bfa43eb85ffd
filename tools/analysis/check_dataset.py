"""Check a config's data set: every image and annotation read the way the
data set reads them; what would be dropped or misread is listed with file
names and counts. Exit status 1 when anything would be.

    python tools/analysis/check_dataset.py CONFIG [--split train|val|test]

The body is ``projects.internimage.apis.data_check``.
"""
import argparse
import sys

from mmengine.config import DictAction

from projects.internimage.apis.data_check import check_config_data


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Check the data set of a config')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--split', choices=['train', 'val', 'test'], default='train',
                        help='which data loader\'s data set (default: train)')
    parser.add_argument('--shown', type=int, default=10, help='files listed per kind')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the config, key=value pairs')
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    report = check_config_data(args.config, args.split, args.cfg_options)
    print(report.format(args.shown))
    return 0 if report.ok else 1


if __name__ == '__main__':
    sys.exit(main())
