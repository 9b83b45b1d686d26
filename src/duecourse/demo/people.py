"""Static lists that make the demo book look like a mainland-China consumer book: names, cities, streets, phones."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class City:
    name: str  # as written in a postal address
    region: str  # ISO 3166-2 code of the province (the borrowers file's region column)
    province: str  # as written at the start of a postal address ("" for the four municipalities)
    district: str  # a central district, the one whose code starts the national id
    division_code: str  # GB/T 2260 six-digit code of that district
    latitude: float  # city centre
    longitude: float
    time_zone: str
    weight: float  # share of borrowers, roughly following population and online-lending use


# Xinjiang runs on Ürümqi time in daily life; its addresses carry Asia/Urumqi so contact hours follow local clocks.
CITIES: Final[tuple[City, ...]] = (
    City("北京市", "CN-BJ", "", "朝阳区", "110105", 39.9042, 116.4074, "Asia/Shanghai", 7.0),
    City("上海市", "CN-SH", "", "浦东新区", "310115", 31.2304, 121.4737, "Asia/Shanghai", 7.0),
    City("广州市", "CN-GD", "广东省", "天河区", "440106", 23.1291, 113.2644, "Asia/Shanghai", 6.0),
    City("深圳市", "CN-GD", "广东省", "福田区", "440304", 22.5431, 114.0579, "Asia/Shanghai", 6.0),
    City("东莞市", "CN-GD", "广东省", "南城街道", "441900", 23.0207, 113.7518, "Asia/Shanghai", 3.0),
    City("成都市", "CN-SC", "四川省", "锦江区", "510104", 30.5728, 104.0668, "Asia/Shanghai", 5.0),
    City("重庆市", "CN-CQ", "", "渝中区", "500103", 29.5630, 106.5516, "Asia/Shanghai", 5.0),
    City("杭州市", "CN-ZJ", "浙江省", "西湖区", "330106", 30.2741, 120.1551, "Asia/Shanghai", 4.0),
    City("武汉市", "CN-HB", "湖北省", "武昌区", "420106", 30.5928, 114.3055, "Asia/Shanghai", 4.0),
    City("西安市", "CN-SN", "陕西省", "雁塔区", "610113", 34.3416, 108.9398, "Asia/Shanghai", 3.5),
    City("南京市", "CN-JS", "江苏省", "鼓楼区", "320106", 32.0603, 118.7969, "Asia/Shanghai", 3.5),
    City("天津市", "CN-TJ", "", "和平区", "120101", 39.3434, 117.3616, "Asia/Shanghai", 3.5),
    City("苏州市", "CN-JS", "江苏省", "姑苏区", "320508", 31.2990, 120.5853, "Asia/Shanghai", 3.0),
    City("郑州市", "CN-HA", "河南省", "金水区", "410105", 34.7466, 113.6254, "Asia/Shanghai", 3.5),
    City("长沙市", "CN-HN", "湖南省", "芙蓉区", "430102", 28.2282, 112.9388, "Asia/Shanghai", 3.0),
    City("沈阳市", "CN-LN", "辽宁省", "和平区", "210102", 41.8057, 123.4315, "Asia/Shanghai", 2.5),
    City("青岛市", "CN-SD", "山东省", "市南区", "370202", 36.0671, 120.3826, "Asia/Shanghai", 2.5),
    City("济南市", "CN-SD", "山东省", "历下区", "370102", 36.6512, 117.1201, "Asia/Shanghai", 2.5),
    City("哈尔滨市", "CN-HL", "黑龙江省", "道里区", "230102", 45.8038, 126.5350, "Asia/Shanghai", 2.5),
    City("昆明市", "CN-YN", "云南省", "五华区", "530102", 25.0389, 102.7183, "Asia/Shanghai", 2.5),
    City("福州市", "CN-FJ", "福建省", "鼓楼区", "350102", 26.0745, 119.2965, "Asia/Shanghai", 2.0),
    City("合肥市", "CN-AH", "安徽省", "蜀山区", "340104", 31.8206, 117.2272, "Asia/Shanghai", 2.5),
    City("南宁市", "CN-GX", "广西壮族自治区", "青秀区", "450103", 22.8170, 108.3665, "Asia/Shanghai", 2.0),
    City("贵阳市", "CN-GZ", "贵州省", "南明区", "520102", 26.6470, 106.6302, "Asia/Shanghai", 2.0),
    City("石家庄市", "CN-HE", "河北省", "长安区", "130102", 38.0428, 114.5149, "Asia/Shanghai", 2.0),
    City("南昌市", "CN-JX", "江西省", "东湖区", "360102", 28.6820, 115.8579, "Asia/Shanghai", 2.0),
    City("太原市", "CN-SX", "山西省", "小店区", "140105", 37.8706, 112.5489, "Asia/Shanghai", 1.5),
    City("兰州市", "CN-GS", "甘肃省", "城关区", "620102", 36.0611, 103.8343, "Asia/Shanghai", 1.0),
    City("呼和浩特市", "CN-NM", "内蒙古自治区", "新城区", "150102", 40.8424, 111.7490, "Asia/Shanghai", 1.0),
    City("海口市", "CN-HI", "海南省", "龙华区", "460106", 20.0440, 110.1999, "Asia/Shanghai", 1.0),
    City("乌鲁木齐市", "CN-XJ", "新疆维吾尔自治区", "天山区", "650102", 43.8256, 87.6168, "Asia/Urumqi", 1.5),
    City("喀什市", "CN-XJ", "新疆维吾尔自治区", "喀什市", "653101", 39.4704, 75.9898, "Asia/Urumqi", 0.5),
)

# The hundred most common surnames, most frequent first; weights fall off as in census counts.
SURNAMES: Final[tuple[str, ...]] = tuple(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)

GIVEN_MALE: Final[tuple[str, ...]] = tuple(
    "伟强磊军洋勇杰涛明超刚华飞鹏辉斌宇浩凯健俊帆帅旭宁龙林博文哲睿宏志海波峰建国东亮成晨阳鑫"
)
GIVEN_FEMALE: Final[tuple[str, ...]] = tuple(
    "芳娜敏静丽艳娟秀霞平桂英玉兰欣婷雪慧佳琳怡思梦雨子轩红燕梅玲颖倩萍晶丹晓璐瑶"
)

STREETS: Final[tuple[str, ...]] = (
    "人民路",
    "解放路",
    "中山路",
    "建设路",
    "和平路",
    "长江路",
    "新华路",
    "文化路",
    "朝阳路",
    "胜利路",
    "幸福路",
    "光明路",
    "花园路",
    "青年路",
    "工业路",
    "学府路",
    "滨江路",
    "迎宾路",
    "东风路",
    "北京路",
)

# Mobile prefixes in use by the three carriers (the third digit varies by carrier and vintage).
MOBILE_PREFIXES: Final[tuple[str, ...]] = (
    "130",
    "131",
    "132",
    "133",
    "135",
    "136",
    "137",
    "138",
    "139",
    "150",
    "151",
    "152",
    "153",
    "155",
    "156",
    "157",
    "158",
    "159",
    "166",
    "177",
    "180",
    "181",
    "182",
    "183",
    "185",
    "186",
    "187",
    "188",
    "189",
    "198",
    "199",
)

MAIL_DOMAINS: Final[tuple[str, ...]] = ("qq.com", "163.com", "126.com", "sina.com", "foxmail.com", "139.com")

EMPLOYER_SUFFIXES: Final[tuple[str, ...]] = (
    "科技有限公司",
    "贸易有限公司",
    "物流有限公司",
    "餐饮管理有限公司",
    "建筑工程有限公司",
)

# Romanisation of SURNAMES, in the same order, for e-mail addresses.
SURNAMES_PINYIN: Final[tuple[str, ...]] = (
    "wang",
    "li",
    "zhang",
    "liu",
    "chen",
    "yang",
    "huang",
    "zhao",
    "wu",
    "zhou",
    "xu",
    "sun",
    "ma",
    "zhu",
    "hu",
    "guo",
    "he",
    "gao",
    "lin",
    "luo",
    "zheng",
    "liang",
    "xie",
    "song",
    "tang",
    "xu",
    "han",
    "feng",
    "deng",
    "cao",
    "peng",
    "zeng",
    "xiao",
    "tian",
    "dong",
    "yuan",
    "pan",
    "yu",
    "jiang",
    "cai",
    "yu",
    "du",
    "ye",
    "cheng",
    "su",
    "wei",
    "lv",
    "ding",
    "ren",
    "shen",
    "yao",
    "lu",
    "jiang",
    "cui",
    "zhong",
    "tan",
    "lu",
    "wang",
    "fan",
    "jin",
    "shi",
    "liao",
    "jia",
    "xia",
    "wei",
    "fu",
    "fang",
    "bai",
    "zou",
    "meng",
    "xiong",
    "qin",
    "qiu",
    "jiang",
    "yin",
    "xue",
    "yan",
    "duan",
    "lei",
    "hou",
    "long",
    "shi",
    "tao",
    "li",
    "he",
    "gu",
    "mao",
    "hao",
    "gong",
    "shao",
    "wan",
    "qian",
    "yan",
    "qin",
    "wu",
    "dai",
    "mo",
    "kong",
    "xiang",
    "tang",
)
